"""The phone-app part of the console's person page: turning the app on and off, signing devices out, who may."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from server.extensions import db
from server.models import AppSession, AuditEntry, ConsoleRole, Person, PersonKind, ResidentAccount, SessionEnd, Site
from server.services.accounts import app_accounts, app_sessions
from server.services.accounts.users import check_password
from server.services.people import people
from tests.conftest import PASSWORD, TEST_ACTOR, csrf_token, login

PHONE = "+86 138 0000 0001"
NEW_PASSWORD = "plum blossom window 7"


@dataclass
class Page:
    """A resident at a site, and the URL of their person page."""

    site: Site
    person: Person
    url: str


@pytest.fixture
def resident(make_site: Callable[..., Site], make_person: Callable[..., Person]) -> Page:
    site = make_site("maple")
    person = make_person(site, "Zhang Min", unit="3-201", phone=PHONE)
    return Page(site, person, f"/people/{person.id}")


@pytest.fixture
def manager(client: FlaskClient, make_user: Callable) -> FlaskClient:
    make_user("manager1")
    login(client, "manager1")
    return client


def post(client: FlaskClient, url: str, page_url: str, **data: object):  # type: ignore[no-untyped-def]
    """POST a form of the person page with the page's CSRF token."""
    token = csrf_token(client.get(page_url).text)
    return client.post(url, data={"csrf_token": token, **data})


def account(person: Person) -> ResidentAccount | None:
    db.session.expire_all()
    return db.session.scalar(select(ResidentAccount).where(ResidentAccount.person_id == person.id))


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def signed_in(person: Person, keys: ServerKeys, devices: int = 2) -> ResidentAccount:
    """Turn the app on through the service and sign `devices` devices in (no password: no Argon2 work)."""
    made = app_accounts.enable_account(db.session, TEST_ACTOR, person, username="zhangmin")
    key = app_sessions.access_key(keys.session_secret)
    for n in range(devices):
        app_sessions.start_session(db.session, key, made, app_sessions.TokenPolicy(), device=f"phone {n}", how="test")
    db.session.commit()
    return made


def state(html: str) -> str:
    match = re.search(r'data-app-state="(\w+)"', html)
    assert match, "the page has no phone-app section"
    return match.group(1)


# ---- what the page shows ---------------------------------------------------------------------------------------


def test_page_shows_the_app_off_with_the_enable_form(manager: FlaskClient, resident: Page) -> None:
    page = manager.get(resident.url).text
    assert state(page) == "off"
    assert 'id="app-heading"' in page
    for field in ("app_username", "app_password", "app_password_repeat"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page
    assert "code sent to their phone" in page


def test_page_shows_sign_in_ways_password_and_devices_but_never_the_hash(
    manager: FlaskClient, resident: Page, keys: ServerKeys
) -> None:
    made = signed_in(resident.person, keys, devices=2)
    app_accounts.enable_account(db.session, TEST_ACTOR, resident.person, password=PASSWORD)
    db.session.commit()
    page = manager.get(resident.url).text
    assert state(page) == "on"
    assert "<code data-app-username>zhangmin</code>" in page and "the phone on file" in page
    assert 'data-app-password="set"' in page and 'data-app-devices="2"' in page and "last used" in page
    assert made.password_hash is not None and made.password_hash not in page and "$argon2" not in page
    assert "0000 0001" in page  # the phone itself appears once, in the person's facts, not in the app section
    assert page.count("0000 0001") == 1
    assert f'action="{resident.url}/app/sign-out"' in page
    assert f'action="{resident.url}/app/disable"' in page
    assert f'action="{resident.url}/app/enable"' not in page


def test_no_section_for_a_visitor(manager: FlaskClient, resident: Page, make_person: Callable[..., Person]) -> None:
    visitor = make_person(resident.site, "Guest Liu", kind=PersonKind.VISITOR)
    page = manager.get(f"/people/{visitor.id}").text
    assert "data-app-state" not in page and "app/enable" not in page


def test_moved_out_person_is_warned_about_and_offered_no_enable_form(
    manager: FlaskClient, resident: Page, keys: ServerKeys
) -> None:
    signed_in(resident.person, keys, devices=0)
    people.move_out(db.session, TEST_ACTOR, resident.person)
    db.session.commit()
    page = manager.get(resident.url).text
    assert state(page) == "on" and "does not let them in" in page
    assert "app/disable" in page and "app/enable" not in page


# ---- turning it on ---------------------------------------------------------------------------------------------


def test_enable_with_username_and_first_password(manager: FlaskClient, resident: Page) -> None:
    response = post(
        manager,
        f"{resident.url}/app/enable",
        resident.url,
        app_username=" Zhang.Min ",
        app_password=NEW_PASSWORD,
        app_password_repeat=NEW_PASSWORD,
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(resident.url)
    made = account(resident.person)
    assert made is not None and made.enabled
    assert made.username == "zhang.min" and made.phone_key == "+8613800000001"
    assert check_password(made.password_hash, NEW_PASSWORD)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "app_account.enable")).one()
    assert entry.actor_label == "manager1" and entry.target_id == str(resident.person.id)
    assert NEW_PASSWORD not in str(entry.details)
    page = manager.get(resident.url).text
    assert "The phone app is on for Zhang Min." in page and state(page) == "on"


def test_enable_by_phone_alone_leaves_the_password_to_the_resident(manager: FlaskClient, resident: Page) -> None:
    response = post(manager, f"{resident.url}/app/enable", resident.url, app_username="", app_password="")
    assert response.status_code == 302
    made = account(resident.person)
    assert made is not None and made.enabled and made.username is None and made.password_hash is None
    page = manager.get(resident.url).text
    assert 'data-app-password="unset"' in page and "data-app-username" not in page
    assert "they sign in with a code sent to their phone" in page


def test_enable_turns_a_disabled_account_back_on_keeping_its_username(
    manager: FlaskClient, resident: Page, keys: ServerKeys
) -> None:
    signed_in(resident.person, keys, devices=0)
    app_accounts.disable_account(db.session, TEST_ACTOR, resident.person)
    db.session.commit()
    page = manager.get(resident.url).text
    assert state(page) == "off" and 'value="zhangmin"' in page  # the form starts from the kept username
    response = post(manager, f"{resident.url}/app/enable", resident.url, app_username="zhangmin")
    assert response.status_code == 302
    made = account(resident.person)
    assert made is not None and made.enabled and made.username == "zhangmin"


@pytest.mark.parametrize(
    ("form", "field", "status"),
    [
        ({"app_username": "x!"}, "app_username", 422),
        ({"app_username": "zhangmin", "app_password": "short", "app_password_repeat": "short"}, "app_password", 422),
        (
            {"app_username": "zhangmin", "app_password": NEW_PASSWORD, "app_password_repeat": "other words 12"},
            "app_password_repeat",
            422,
        ),
        ({"app_username": "taken.name"}, "app_username", 409),
    ],
    ids=["bad_username", "weak_password", "passwords_differ", "username_taken"],
)
def test_refused_enable_shows_the_reason_at_its_field_and_stores_nothing(
    manager: FlaskClient,
    resident: Page,
    make_person: Callable[..., Person],
    form: dict[str, str],
    field: str,
    status: int,
) -> None:
    other = make_person(resident.site, "Li Wei")
    app_accounts.enable_account(db.session, TEST_ACTOR, other, username="taken.name")
    db.session.commit()
    before = actions()
    response = post(manager, f"{resident.url}/app/enable", resident.url, **form)
    assert response.status_code == status
    assert f'id="{field}-error" role="alert"' in response.text
    assert f'aria-invalid="true" aria-describedby="{field}-error"' in response.text or (
        f'aria-describedby="{field}-hint {field}-error" aria-invalid="true"' in response.text
    )
    assert f'value="{form["app_username"]}"' in response.text  # the username typed is kept
    for secret in (form.get("app_password"), form.get("app_password_repeat")):
        assert not secret or secret not in response.text  # passwords are never echoed
    assert account(resident.person) is None
    assert actions() == before


def test_no_phone_and_no_username_is_refused_at_the_username(
    manager: FlaskClient, resident: Page, make_person: Callable[..., Person]
) -> None:
    phoneless = make_person(resident.site, "Wu Hao")
    url = f"/people/{phoneless.id}"
    assert "No phone number is recorded" in manager.get(url).text
    response = post(manager, f"{url}/app/enable", url, app_username="  ")
    assert response.status_code == 422
    assert 'id="app_username-error" role="alert"' in response.text and "record a phone number" in response.text
    assert account(phoneless) is None


def test_enabling_a_visitor_is_refused_and_shown(
    manager: FlaskClient, resident: Page, make_person: Callable[..., Person]
) -> None:
    visitor = make_person(resident.site, "Guest Liu", kind=PersonKind.VISITOR, phone="+86 139 0000 0002")
    url = f"/people/{visitor.id}"
    response = post(manager, f"{url}/app/enable", url, app_username="guest")
    assert response.status_code == 422
    assert 'id="app_account-error" role="alert"' in response.text and "not app accounts" in response.text
    assert account(visitor) is None


def test_a_form_without_its_csrf_token_is_refused(manager: FlaskClient, resident: Page) -> None:
    response = manager.post(f"{resident.url}/app/enable", data={"app_username": "zhangmin"})
    assert response.status_code == 400
    assert account(resident.person) is None


# ---- turning it off, signing devices out -----------------------------------------------------------------------


def live(person: Person) -> list[AppSession]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(AppSession).join(ResidentAccount).where(ResidentAccount.person_id == person.id))
    )


def test_disable_turns_the_app_off_and_signs_every_device_out(
    manager: FlaskClient, resident: Page, keys: ServerKeys
) -> None:
    signed_in(resident.person, keys, devices=2)
    page = manager.get(resident.url).text
    assert "data-confirm=" in page.split(f'action="{resident.url}/app/disable"')[1][:300]
    response = post(manager, f"{resident.url}/app/disable", resident.url)
    assert response.status_code == 302
    made = account(resident.person)
    assert made is not None and not made.enabled
    assert [s.revoked_reason for s in live(resident.person)] == [SessionEnd.DISABLED] * 2
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "app_account.disable")).one()
    assert entry.actor_label == "manager1" and entry.details == {"ended": 2}
    page = manager.get(resident.url).text
    assert "The phone app is off for Zhang Min; 2 devices were signed out." in page
    assert state(page) == "off" and "app/enable" in page


def test_sign_out_everywhere_keeps_the_app_on(manager: FlaskClient, resident: Page, keys: ServerKeys) -> None:
    signed_in(resident.person, keys, devices=3)
    response = post(manager, f"{resident.url}/app/sign-out", resident.url)
    assert response.status_code == 302
    made = account(resident.person)
    assert made is not None and made.enabled
    assert [s.revoked_reason for s in live(resident.person)] == [SessionEnd.MANAGER] * 3
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "app_account.sign_out_everywhere")).one()
    assert entry.actor_label == "manager1" and entry.details == {"ended": 3}
    page = manager.get(resident.url).text
    assert "3 devices were signed out of the phone app." in page
    assert state(page) == "on" and 'data-app-devices="0"' in page and "app/sign-out" not in page


@pytest.mark.parametrize("action", ["disable", "sign-out"])
def test_without_an_account_disable_and_sign_out_are_refused(manager: FlaskClient, resident: Page, action: str) -> None:
    before = actions()
    response = post(manager, f"{resident.url}/app/{action}", resident.url)
    assert response.status_code == 404
    assert 'id="app_account-error" role="alert"' in response.text and "no app account" in response.text
    assert account(resident.person) is None and actions() == before


# ---- who may ---------------------------------------------------------------------------------------------------


def app_routes(app: Flask, person_id: int) -> list[str]:
    urls = [r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("person_app.")]
    return sorted(re.sub(r"<int:\w+>", str(person_id), url) for url in urls)


def test_a_guard_sees_nothing_and_may_do_nothing(
    app: Flask, client: FlaskClient, make_user: Callable, resident: Page, keys: ServerKeys
) -> None:
    signed_in(resident.person, keys, devices=1)
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    token = csrf_token(client.get("/").text)
    assert client.get(resident.url).status_code == 403
    routes = app_routes(app, resident.person.id)
    assert len(routes) == 3
    for url in routes:
        response = client.post(url, data={"csrf_token": token, "app_username": "guard.made"})
        assert response.status_code == 403, url
    made = account(resident.person)
    assert made is not None and made.enabled and made.username == "zhangmin"
    assert all(s.revoked_at is None for s in live(resident.person))


def test_logged_out_posts_go_to_login(app: Flask, client: FlaskClient, resident: Page) -> None:
    for url in app_routes(app, resident.person.id):
        response = client.post(url)
        assert response.status_code in (302, 400), url
        assert account(resident.person) is None


def test_an_admin_may_turn_the_app_on(client: FlaskClient, make_user: Callable, resident: Page) -> None:
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    response = post(client, f"{resident.url}/app/enable", resident.url, app_username="zhangmin")
    assert response.status_code == 302
    made = account(resident.person)
    assert made is not None and made.enabled


# ---- in Chinese ------------------------------------------------------------------------------------------------


def test_the_section_and_its_refusals_are_in_chinese(
    client: FlaskClient, make_user: Callable, resident: Page, make_person: Callable[..., Person]
) -> None:
    other = make_person(resident.site, "Li Wei")
    app_accounts.enable_account(db.session, TEST_ACTOR, other, username="taken.name")
    db.session.commit()
    make_user("manager1")
    login(client, "manager1")
    client.post("/language", data={"language": "zh_CN", "csrf_token": csrf_token(client.get("/").text)})
    page = client.get(resident.url).text
    assert "手机应用" in page and "Phone app" not in page and "Turn the phone app on" not in page
    response = post(client, f"{resident.url}/app/enable", resident.url, app_username="taken.name")
    assert response.status_code == 409
    error = re.search(r'id="app_username-error" role="alert">([^<]+)<', response.text)
    assert error and re.search(r"[\u4e00-\u9fff]", error.group(1)) and "taken" not in error.group(1)
    assert account(resident.person) is None
