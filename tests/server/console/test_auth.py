"""Console login, roles, CSRF and sessions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.app import create_app
from server.extensions import db
from server.models import AuditEntry, ConsoleRole, ConsoleUser
from server.services.accounts import users
from server.services.errors import Conflict, RuleViolation
from server.services.terminals import terminals
from tests.conftest import PASSWORD, TEST_ACTOR, csrf_token, login, server_config


@pytest.mark.real_password_cost
def test_password_is_stored_as_argon2id(make_user):
    user = make_user()
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106's second recommendation
    assert not users.needs_rehash(user.password_hash)
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [("ab", PASSWORD, RuleViolation), ("ok_name", "short", RuleViolation), ("bad name!", PASSWORD, RuleViolation)],
)
def test_user_validation(app, username, password, error):
    with pytest.raises(error):
        users.create_user(db.session, TEST_ACTOR, username, password, ConsoleRole.GUARD)


def test_duplicate_username_ignores_case(make_user):
    make_user("Alice")
    with pytest.raises(Conflict):
        users.create_user(db.session, TEST_ACTOR, "alice", PASSWORD, ConsoleRole.GUARD)


def test_login_and_logout(client, make_user):
    make_user("manager1")
    assert client.get("/").status_code == 302
    response = login(client, "manager1")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and "Dashboard" in page.text
    client.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert client.get("/").status_code == 302
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "user.login" in actions


def test_wrong_password_is_refused_with_a_clear_message(client, make_user):
    make_user("manager1")
    response = login(client, "manager1", "not the password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert login(client, "nobody", PASSWORD).status_code == 401


def test_login_without_csrf_token_is_refused(client, make_user):
    make_user("manager1")
    response = client.post("/login", data={"username": "manager1", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_does_not_redirect_off_site(client, make_user):
    make_user("manager1")
    page = client.get("/login?next=//evil.example/")
    response = client.post(
        "/login?next=//evil.example/",
        data={"username": "manager1", "password": PASSWORD, "csrf_token": csrf_token(page.text)},
    )
    assert response.headers["Location"] == "/"


def test_guard_cannot_open_manager_pages(client, make_user):
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    assert client.get("/terminals").status_code == 200
    assert client.get("/people").status_code == 403


def test_disabled_user_cannot_log_in(client, make_user):
    user = make_user("manager1")
    user.active = False
    db.session.commit()
    assert login(client, "manager1").status_code == 401


def test_password_change_ends_other_sessions(client, make_user):
    user = make_user("manager1")
    login(client, "manager1")
    assert client.get("/").status_code == 200
    users.set_password(db.session, TEST_ACTOR, db.session.get(ConsoleUser, user.id), "a new long password")
    db.session.commit()
    assert client.get("/").status_code == 302


def test_terminals_page_shows_status(client, make_user, make_site, make_door):
    site = make_site()
    door = make_door(site)
    made = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Gate terminal", [door])
    terminals.record_status(db.session, site.code, made.terminal.ident, online=True)
    db.session.commit()
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    page = client.get("/terminals").text
    assert made.terminal.ident in page and 'data-status="online"' in page
    assert made.mqtt_password not in page
    # The door's creation is one journal change the terminal has not acknowledged yet.
    assert 'data-lag="1"' in page


def test_production_cookies_are_secure(db_url, key_dir, keys):
    app = create_app(server_config(db_url, key_dir, mode="production"), keys=keys)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]
    dev = create_app(server_config(db_url, key_dir), keys=keys)
    assert not dev.config["SESSION_COOKIE_SECURE"]


def test_health_needs_no_login(client):
    assert client.get("/healthz").json == {"status": "ok"}
