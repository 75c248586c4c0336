"""Red team, issue 18 item 3: concurrent wrong passwords must not verify more guesses than the sign-in limit.

The sequence used to be check the count, run Argon2, then record the failure; requests that checked before any of
them recorded all got to verify. Twelve threads, each with its own database session, guess at once against the
console and the phone-app sign-in, on SQLite and PostgreSQL; at most the limit of them may reach a password check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask

from gatehouse_core.keyring import ServerKeys
from server.extensions import db
from server.models import Person, Site
from server.services.accounts import app_accounts, app_sessions, login_throttle, sign_in, users
from server.services.accounts.sign_in import SignInRefused, TooManyAttempts
from tests.conftest import PASSWORD, TEST_ACTOR

GUESSES = 12
ADDRESS = "203.0.113.7"


def guess_at_once(app: Flask, attempt: Callable[[int], object]) -> list[str]:
    """Run `attempt(i)` in GUESSES threads released together, each in its own app context (own session)."""
    start = threading.Barrier(GUESSES)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        with app.app_context():
            start.wait()
            try:
                attempt(i)
                outcome = "signed in"
            except TooManyAttempts:
                outcome = "throttled"
            except SignInRefused:
                outcome = "refused"
            finally:
                db.session.rollback()
                db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def guess_in_turn(attempt: Callable[[int], object]) -> None:
    """Guess one after another until refused for too many attempts."""
    for i in range(GUESSES):
        try:
            attempt(i)
        except TooManyAttempts:
            db.session.rollback()
            return
        except SignInRefused:
            db.session.rollback()
    pytest.fail("never refused for too many attempts")


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the real Argon2 check was asked to verify."""
    seen: list[str] = []
    lock = threading.Lock()
    real = users.check_password

    def counting(password_hash: str | None, password: str) -> bool:
        with lock:
            seen.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(users, "check_password", counting)
    monkeypatch.setattr(app_accounts, "check_password", counting)
    return seen


def test_concurrent_console_guesses_verify_no_more_than_the_limit(app, make_user, verified):
    make_user("manager1")
    outcomes = guess_at_once(
        app, lambda i: sign_in.console_sign_in(db.session, "manager1", f"wrong guess {i}", ADDRESS)
    )
    assert len(outcomes) == GUESSES and "signed in" not in outcomes
    assert len(verified) <= login_throttle.MAX_PER_USERNAME, outcomes
    assert outcomes.count("refused") == len(verified)
    # Guessing on, one at a time, reaches the limit and no further; then the right password waits too.
    guess_in_turn(lambda i: sign_in.console_sign_in(db.session, "manager1", f"later guess {i}", ADDRESS))
    assert len(verified) == login_throttle.MAX_PER_USERNAME
    with pytest.raises(TooManyAttempts):
        sign_in.console_sign_in(db.session, "manager1", PASSWORD, "198.51.100.2")


def test_concurrent_phone_app_guesses_verify_no_more_than_the_limit(
    app: Flask,
    keys: ServerKeys,
    make_site: Callable[..., Site],
    make_person: Callable[..., Person],
    verified: list[str],
) -> None:
    person = make_person(make_site(), phone="+86 138 0000 0001")
    app_accounts.enable_account(db.session, TEST_ACTOR, person, username="resident1", password=PASSWORD)
    db.session.commit()
    verified.clear()
    access_key = app_sessions.access_key(keys.session_secret)

    def attempt(i: int) -> object:
        return sign_in.app_password_sign_in(
            db.session,
            "resident1",
            f"wrong guess {i}",
            ADDRESS,
            access_key=access_key,
            policy=app_sessions.TokenPolicy(),
            device="phone",
        )

    outcomes = guess_at_once(app, attempt)
    assert len(outcomes) == GUESSES and "signed in" not in outcomes
    assert len(verified) <= login_throttle.MAX_PER_USERNAME, outcomes
    assert outcomes.count("refused") == len(verified)
    guess_in_turn(attempt)
    assert len(verified) == login_throttle.MAX_PER_USERNAME
