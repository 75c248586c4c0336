"""Red team, issue 18 item 9: a copied console cookie kept working after the user logged out.

The session lives in a signed cookie; logging out only asked the browser to forget it, so a copy (same address,
same browser) stayed valid for up to 8 hours. Logging out must end that session on the server.
"""

from __future__ import annotations

from server.extensions import db
from tests.conftest import IsolatedClient, csrf_token, login


def browser(app) -> IsolatedClient:
    return IsolatedClient(app, app.response_class, use_cookies=True)


def copy_session(app, original: IsolatedClient) -> IsolatedClient:
    """Another client carrying the same session cookie (same address and user agent as the original)."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = original.get_cookie(name)
    assert cookie is not None
    thief = browser(app)
    thief.set_cookie(name, cookie.value)
    return thief


def test_a_copied_cookie_stops_working_when_its_user_logs_out(app, make_user):
    make_user("manager1")
    manager = browser(app)
    login(manager, "manager1")
    thief = copy_session(app, manager)
    assert thief.get("/").status_code == 200  # the copy works while the session lasts

    page = manager.get("/")
    assert manager.post("/logout", data={"csrf_token": csrf_token(page.text)}).status_code == 302
    db.session.expire_all()

    response = thief.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert thief.get("/people").status_code == 302


def test_logging_out_ends_only_that_session(app, make_user):
    make_user("manager1")
    laptop, phone = browser(app), browser(app)
    login(laptop, "manager1")
    login(phone, "manager1")
    copy = copy_session(app, phone)
    page = phone.get("/")
    phone.post("/logout", data={"csrf_token": csrf_token(page.text)})
    db.session.expire_all()
    assert copy.get("/").status_code == 302
    assert laptop.get("/").status_code == 200
    # Signing in again on the same browser starts a new session that works.
    login(phone, "manager1")
    assert phone.get("/").status_code == 200
