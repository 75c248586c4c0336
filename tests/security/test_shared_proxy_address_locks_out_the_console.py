"""Red team, issue 18 item 5: one shared address locked every manager out of the console.

Behind the site's TLS proxy every request came from the proxy's address, and the console could not be told to
believe X-Forwarded-For; twenty failures by anyone then refused every manager for 15 minutes. Phone-app failures
counted against the same address too. Now the console trusts a configured number of proxies, the two surfaces
count apart, and a browser that has signed in as a user before is never refused that user's right password
because of its address; unknown browsers from a busy address are still slowed down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from gatehouse_core.keyring import ServerKeys
from server.app import create_app
from server.extensions import db
from server.models import ConsoleUser, Person, Site
from server.services.accounts import app_accounts, app_sessions, login_throttle, sign_in
from server.services.accounts.sign_in import SignInRefused
from tests.conftest import PASSWORD, TEST_ACTOR, IsolatedClient, csrf_token, login, server_config

PROXY = "10.0.0.2"
ATTACKER = "203.0.113.7"
MANAGER = "198.51.100.20"


@pytest.fixture
def proxied_app(app: Flask, key_dir: Path, keys: ServerKeys) -> Iterator[Flask]:
    """The console as deployed behind one TLS proxy, on the test database."""
    config = server_config(app.config["SQLALCHEMY_DATABASE_URI"], key_dir, trusted_proxies=1)
    console = create_app(config, keys=keys, testing=True)
    yield console
    with console.app_context():
        db.session.remove()
        db.engine.dispose()


def browser(app: Flask, address: str = "127.0.0.1", forwarded_for: str | None = None) -> IsolatedClient:
    """A browser reaching the console from `address`, through the proxy when `forwarded_for` is given."""
    client = IsolatedClient(app, app.response_class, use_cookies=True)
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
        client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
        # Over HTTPS the CSRF check also wants a same-site referrer, as browsers send.
        client.environ_base["HTTP_REFERER"] = "https://localhost/login"
    return client


def fail_many(client: IsolatedClient, count: int = login_throttle.MAX_PER_ADDRESS) -> list[int]:
    return [login(client, f"nobody{i}", "wrong guess").status_code for i in range(count)]


def test_behind_the_proxy_an_attacker_is_limited_by_their_own_address(
    proxied_app: Flask, make_user: Callable[..., ConsoleUser]
) -> None:
    make_user("manager1")
    attacker = browser(proxied_app, PROXY, forwarded_for=ATTACKER)
    assert set(fail_many(attacker)) == {401}
    # The attacker's own address is slowed down...
    assert login(attacker, "nobody-else", "wrong guess").status_code == 429
    # ...and a manager coming through the same proxy signs in as usual.
    manager = browser(proxied_app, PROXY, forwarded_for=MANAGER)
    assert login(manager, "manager1").status_code == 302
    assert manager.get("/").status_code == 200


def test_a_known_browser_is_not_locked_out_by_failures_from_its_address(
    app: Flask, make_user: Callable[..., ConsoleUser]
) -> None:
    make_user("manager1")
    make_user("guard1")
    office = browser(app)  # the site office: signed in as both before
    for name in ("manager1", "guard1"):
        assert login(office, name).status_code == 302
        page = office.get("/")
        office.post("/logout", data={"csrf_token": csrf_token(page.text)})

    assert set(fail_many(browser(app))) == {401}  # someone else behind the same address

    # A browser never signed in as manager1 is slowed down, even with the right password...
    assert login(browser(app), "manager1").status_code == 429
    # ...but the office's browser, where both have signed in, is not.
    assert login(office, "manager1").status_code == 302
    page = office.get("/")
    office.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert login(office, "guard1").status_code == 302
    # The known browser still gets only the username's few guesses.
    page = office.get("/")
    office.post("/logout", data={"csrf_token": csrf_token(page.text)})
    for _ in range(login_throttle.MAX_PER_USERNAME):
        assert login(office, "manager1", "wrong guess").status_code == 401
    assert login(office, "manager1").status_code == 429


def test_phone_app_failures_do_not_count_against_the_console(
    app: Flask,
    keys: ServerKeys,
    make_user: Callable[..., ConsoleUser],
    make_site: Callable[..., Site],
    make_person: Callable[..., Person],
) -> None:
    make_user("manager1")
    person = make_person(make_site(), phone="+86 138 0000 0001")
    app_accounts.enable_account(db.session, TEST_ACTOR, person, username="manager1", password=PASSWORD)
    db.session.commit()
    app_sign_in: dict[str, Any] = {
        "access_key": app_sessions.access_key(keys.session_secret),
        "policy": app_sessions.TokenPolicy(),
        "device": "phone",
    }
    for i in range(login_throttle.MAX_PER_ADDRESS):
        # Even a phone-app login that is also a console username does not touch the console's counters.
        login_name = "manager1" if i < login_throttle.MAX_PER_USERNAME else f"nobody{i}"
        with pytest.raises(SignInRefused):
            sign_in.app_password_sign_in(db.session, login_name, "wrong guess", "127.0.0.1", **app_sign_in)
        db.session.rollback()
    assert login(browser(app), "manager1").status_code == 302
