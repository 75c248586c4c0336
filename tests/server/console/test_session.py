"""Console sessions: login throttling, logging out everywhere, the per-user language and security headers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from server.extensions import db
from server.models import AuditEntry, ConsoleUser, LoginAttempt, utcnow
from server.services.accounts import login_throttle
from tests.conftest import IsolatedClient, csrf_token, login


def test_repeated_wrong_passwords_lock_the_username_for_a_while(client, make_user):
    make_user("manager1")
    for _ in range(login_throttle.MAX_PER_USERNAME):
        assert login(client, "manager1", "wrong password!").status_code == 401
    # Now even the right password is refused until the window has passed, with a clear answer.
    refused = login(client, "manager1")
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/").status_code == 302
    # The window passes: the failures age out and the right password works again.
    db.session.execute(
        LoginAttempt.__table__.update().values(at=utcnow() - login_throttle.WINDOW - timedelta(seconds=1))
    )
    db.session.commit()
    assert login(client, "manager1").status_code == 302
    assert client.get("/").status_code == 200


def test_username_case_does_not_escape_the_throttle(client, make_user):
    make_user("manager1")
    for name in ("manager1", "MANAGER1", "Manager1", "mAnager1", "manager1"):
        login(client, name, "wrong password!")
    assert login(client, "Manager1").status_code == 429


def test_one_address_guessing_many_usernames_is_throttled(client, make_user):
    make_user("manager1")
    for i in range(login_throttle.MAX_PER_ADDRESS):
        login(client, f"nobody{i}", "wrong password!")
    assert login(client, "manager1").status_code == 429


def test_successful_login_forgets_earlier_failures(client, make_user):
    make_user("manager1")
    for _ in range(login_throttle.MAX_PER_USERNAME - 1):
        login(client, "manager1", "wrong password!")
    assert login(client, "manager1").status_code == 302
    count = db.session.scalar(select(func.count()).select_from(LoginAttempt).where(LoginAttempt.username == "manager1"))
    assert count == 0


def test_old_failures_are_deleted_as_new_ones_arrive(app, make_user):
    old = utcnow() - login_throttle.WINDOW - timedelta(minutes=1)
    login_throttle.record_attempt(db.session, login_throttle.Surface.CONSOLE, "a", "10.0.0.1", at=old)
    login_throttle.record_attempt(db.session, login_throttle.Surface.CONSOLE, "b", "10.0.0.2")
    db.session.commit()
    assert db.session.scalars(select(LoginAttempt.username)).all() == ["b"]


def test_log_out_everywhere_ends_every_session_of_the_user(app, make_user):
    make_user("manager1")
    laptop, phone = (IsolatedClient(app, app.response_class, use_cookies=True) for _ in range(2))
    for browser in (laptop, phone):
        login(browser, "manager1")
        assert browser.get("/").status_code == 200
    page = phone.get("/")
    response = phone.post("/logout-everywhere", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 302
    assert "user.logout_everywhere" in db.session.scalars(select(AuditEntry.action)).all()
    # A new login works and is not affected.
    login(laptop, "manager1")
    assert laptop.get("/").status_code == 200


def test_plain_logout_leaves_other_sessions(app, make_user):
    make_user("manager1")
    laptop, phone = (IsolatedClient(app, app.response_class, use_cookies=True) for _ in range(2))
    for browser in (laptop, phone):
        login(browser, "manager1")
    page = phone.get("/")
    phone.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert phone.get("/").status_code == 302
    assert laptop.get("/").status_code == 200


def test_language_is_chosen_per_user_and_kept(app, make_user):
    make_user("manager1")
    make_user("manager2")
    first, second = (IsolatedClient(app, app.response_class, use_cookies=True) for _ in range(2))
    login(first, "manager1")
    login(second, "manager2")
    page = first.get("/")
    assert '<html lang="en">' in page.text
    response = first.post("/language", data={"language": "zh_CN", "next": "/", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert db.session.scalar(select(ConsoleUser.language).where(ConsoleUser.username == "manager1")) == "zh_CN"
    assert '<html lang="zh-CN">' in first.get("/").text
    # The other user's console stays in English.
    assert '<html lang="en">' in second.get("/").text


def test_unknown_language_is_refused_and_nothing_changes(client, make_user):
    make_user("manager1")
    login(client, "manager1")
    page = client.get("/")
    response = client.post("/language", data={"language": "xx", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 400
    assert db.session.scalar(select(ConsoleUser.language).where(ConsoleUser.username == "manager1")) == "en"


def test_language_change_needs_the_csrf_token(client, make_user):
    make_user("manager1")
    login(client, "manager1")
    assert client.post("/language", data={"language": "zh_CN"}).status_code == 400


def test_login_page_follows_the_browser_language(client):
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in page.text
    assert '<html lang="en">' in client.get("/login", headers={"Accept-Language": "fr"}).text


def test_pages_carry_a_strict_content_security_policy(client, make_user):
    make_user("manager1")
    login(client, "manager1")
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    # Nothing in the page relies on inline script or style, which the policy would block.
    assert "<script>" not in response.text and "style=" not in response.text and " onclick=" not in response.text


def test_navigation_shows_only_what_the_role_may_open(client, make_user):
    from server.models import ConsoleRole

    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    page = client.get("/").text
    assert 'href="/people"' not in page and 'href="/privacy"' not in page and 'href="/audit"' not in page
