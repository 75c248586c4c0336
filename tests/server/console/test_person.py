"""The console's person page: facts, credentials (typed, captured at a terminal, ID, app code), groups, guard."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import Window
from gatehouse_core.sealed import unseal
from gatehouse_core.wire.messages import Decision, EntryMethod
from server.extensions import db
from server.models import (
    AccessEvent,
    AccessGroup,
    AuditEntry,
    CommandOp,
    CommandStatus,
    ConsoleRole,
    Credential,
    CredentialStatus,
    Person,
    Site,
    Terminal,
    TerminalCommand,
    utcnow,
)
from server.services.access import access, sites
from server.services.access.usual_group import set_usual_group
from server.services.people import credentials
from server.services.people.credentials import app_code_context
from server.services.privacy import erasure
from server.services.terminals import commands, terminals
from tests.conftest import TEST_ACTOR, csrf_token, login
from tests.server.services.test_subject_access import assert_no_leak, leak_needles, populate

CARD = "04A2B3C4D5E6F7"


@dataclass
class World:
    """A site with a door, a terminal and two groups, a resident, and a logged-in manager."""

    site: Site
    terminal: Terminal
    group: AccessGroup
    other_group: AccessGroup
    person: Person
    url: str


@pytest.fixture
def world(
    client: FlaskClient, make_site: Callable[..., Site], make_person: Callable[..., Person], make_user: Callable
) -> World:
    site = make_site("maple")
    door = sites.save_door(db.session, TEST_ACTOR, site, "North gate", sites.DoorMethods())
    terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "North terminal", [door]).terminal
    always = [Window(day, 0, 1440) for day in range(7)]
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], always)
    other = access.create_group(db.session, TEST_ACTOR, site, "Gym", [door], always)
    db.session.commit()
    person = make_person(site, "Zhang Min", unit="3-201", phone="+86 138 0000 0000")
    make_user("manager1")
    login(client, "manager1")
    return World(site, terminal, group, other, person, f"/people/{person.id}")


def post(client: FlaskClient, url: str, page_url: str, **data: object) -> object:
    """POST a form of the person page with the page's CSRF token."""
    token = csrf_token(client.get(page_url).text)
    return client.post(url, data={"csrf_token": token, **data})


def person_credentials(person: Person, kind: CredentialKind | None = None) -> list[Credential]:
    db.session.expire_all()
    stmt = select(Credential).where(Credential.person_id == person.id).order_by(Credential.id)
    if kind is not None:
        stmt = stmt.where(Credential.kind == kind)
    return list(db.session.scalars(stmt))


def test_page_shows_the_person_and_its_sections(client: FlaskClient, world: World) -> None:
    page = client.get(world.url)
    assert page.status_code == 200
    assert re.search(r"<h1>\s*Zhang Min\s*</h1>", page.text)
    for text in ("3-201", "+86 138 0000 0000", "Test site", "resident", "active", "not recorded"):
        assert text in page.text
    # The manager's questions in order: can they get in, with what, the app, what happened, privacy.
    h2 = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page.text, re.S)]
    assert h2 == ["Can this person get in?", "Credentials", "Phone app", "History", "Privacy"]
    h3 = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h3[^>]*>(.*?)</h3>", page.text, re.S)]
    assert h3[:5] == ["Access groups", "Key card", "ID document", "App code", "Face"]
    assert "Face entry is optional" in page.text
    assert f'href="/people/{world.person.id}/subject-access"' in page.text
    assert "North terminal" in page.text and "Read card at terminal" in page.text
    if "people.edit" in client.application.view_functions:
        assert f'href="/people/{world.person.id}/edit"' in page.text


def test_unknown_person_is_404(client: FlaskClient, world: World) -> None:
    assert client.get("/people/999999").status_code == 404


def test_typed_card_is_added_and_never_shown(client: FlaskClient, world: World) -> None:
    response = post(client, f"{world.url}/cards", world.url, uid=CARD)
    assert response.status_code == 302
    [card] = person_credentials(world.person, CredentialKind.CARD)
    assert card.status is CredentialStatus.ACTIVE
    page = client.get(world.url).text
    assert "Key card" in page and "Card added." in page
    assert CARD not in page and card.lookup_hash is not None and card.lookup_hash not in page
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "credential.add")) is not None


def test_duplicate_card_is_refused_next_to_the_field(
    client: FlaskClient, world: World, make_person: Callable[..., Person]
) -> None:
    neighbour = make_person(world.site, "Wang Fang")
    post(client, f"/people/{neighbour.id}/cards", world.url, uid=CARD)
    response = post(client, f"{world.url}/cards", world.url, uid=CARD)
    assert response.status_code == 409
    assert 'id="uid-error" role="alert"' in response.text and "already registered" in response.text
    assert 'aria-invalid="true"' in response.text
    assert person_credentials(world.person) == []


@pytest.mark.parametrize("uid", ["not a card", "04A2B3", ""])
def test_bad_uid_is_refused_and_nothing_stored(client: FlaskClient, world: World, uid: str) -> None:
    response = post(client, f"{world.url}/cards", world.url, uid=uid)
    assert response.status_code == 422
    assert 'id="uid-error" role="alert"' in response.text
    # The form keeps what was typed so it can be corrected.
    assert f'name="uid" value="{uid}"' in response.text
    assert person_credentials(world.person) == []
    assert db.session.scalar(select(func.count()).select_from(Credential)) == 0


def test_revoke_a_credential(client: FlaskClient, world: World, keys: ServerKeys) -> None:
    card = credentials.add_card(db.session, TEST_ACTOR, keys, world.person, CARD)
    db.session.commit()
    page = client.get(world.url).text
    assert "data-confirm=" in page and ">Revoke</button>" in page
    response = post(client, f"{world.url}/credentials/{card.id}/revoke", world.url)
    assert response.status_code == 302
    [revoked] = person_credentials(world.person)
    assert revoked.status is CredentialStatus.REVOKED and revoked.revoked_at is not None
    page = client.get(world.url).text
    assert "revoked" in page and ">Revoke</button>" not in page


def test_revoke_refuses_another_persons_credential(
    client: FlaskClient, world: World, keys: ServerKeys, make_person: Callable[..., Person]
) -> None:
    neighbour = make_person(world.site, "Wang Fang")
    card = credentials.add_card(db.session, TEST_ACTOR, keys, neighbour, CARD)
    db.session.commit()
    assert post(client, f"{world.url}/credentials/{card.id}/revoke", world.url).status_code == 404
    db.session.refresh(card)
    assert card.status is CredentialStatus.ACTIVE


def test_id_document_is_added(client: FlaskClient, world: World) -> None:
    number = "110101199003070000"
    response = post(client, f"{world.url}/id-documents", world.url, id_number=number)
    assert response.status_code == 302
    [document] = person_credentials(world.person, CredentialKind.ID_DOCUMENT)
    page = client.get(world.url).text
    assert "ID document" in page and number not in page and str(document.lookup_hash) not in page


def test_bad_id_document_is_refused(client: FlaskClient, world: World) -> None:
    response = post(client, f"{world.url}/id-documents", world.url, id_number="!")
    assert response.status_code == 422 and 'id="id_number-error"' in response.text
    assert person_credentials(world.person) == []


def shown_secret(html: str) -> str:
    match = re.search(r'id="app-secret"[^>]*value="([A-Z2-7 ]+)"', html)
    assert match, "no secret on the page"
    return match.group(1).replace(" ", "")


def test_reset_app_code_shows_the_seed_once_and_revokes_the_old_one(
    client: FlaskClient, world: World, keys: ServerKeys
) -> None:
    first = post(client, f"{world.url}/app-code", world.url)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert "shown only now" in first.text and "otpauth://totp/" in first.text
    [credential] = person_credentials(world.person, CredentialKind.APP_CODE)
    assert credential.sealed_secret is not None
    seed = unseal(keys.template_key, credential.sealed_secret, app_code_context(world.person.id))
    secret = shown_secret(first.text)
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == seed
    # Never again: not on the person page, not in the audit log.
    page = client.get(world.url).text
    assert secret not in page and "App code" in page
    details = " ".join(str(e.details) for e in db.session.scalars(select(AuditEntry)))
    assert secret not in details

    second = post(client, f"{world.url}/app-code", world.url)
    assert shown_secret(second.text) != secret
    old, new = person_credentials(world.person, CredentialKind.APP_CODE)
    assert old.status is CredentialStatus.REVOKED and new.status is CredentialStatus.ACTIVE


def capture(client: FlaskClient, world: World, terminal_id: int) -> TerminalCommand:
    response = post(client, f"{world.url}/cards/capture", world.url, terminal=terminal_id)
    assert response.status_code == 302
    command = db.session.scalars(select(TerminalCommand).order_by(TerminalCommand.id.desc())).first()
    assert command is not None
    assert response.headers["Location"].endswith(f"{world.url}?command={command.id}")
    return command


def finish(command: TerminalCommand, status: CommandStatus, outcome: str | None = None) -> None:
    """What the worker does when the terminal answers (or the command runs out of time)."""
    command.status = status
    command.outcome = outcome
    command.finished_at = utcnow()
    db.session.commit()


def test_capture_at_a_terminal_queues_a_command_and_shows_its_progress(client: FlaskClient, world: World) -> None:
    command = capture(client, world, world.terminal.id)
    assert command.op is CommandOp.CAPTURE_CARD and command.person_id == world.person.id
    assert command.terminal_id == world.terminal.id and command.status is CommandStatus.PENDING
    fragment_url = f"{world.url}/commands/{command.id}"
    page = client.get(f"{world.url}?command={command.id}").text
    assert f'data-poll="{fragment_url}"' in page and 'aria-live="polite"' in page
    assert "Present the card at North terminal now" in page

    waiting = client.get(fragment_url)
    assert waiting.status_code == 200 and "Present the card at North terminal now" in waiting.text
    assert "data-final" not in waiting.text

    finish(command, CommandStatus.DONE, "enrolled")
    done = client.get(fragment_url).text
    assert "Card added" in done and "data-final" in done
    # Once finished, the page shows the outcome without polling.
    page = client.get(f"{world.url}?command={command.id}").text
    assert "data-poll=" not in page and "Card added" in page


@pytest.mark.parametrize(
    ("status", "outcome", "text"),
    [
        (CommandStatus.FAILED, "duplicate_card", "already registered to someone"),
        (CommandStatus.FAILED, "bad_uid", "number is not valid"),
        (CommandStatus.FAILED, "superseded", "newer card reading"),
        (CommandStatus.EXPIRED, "expired", "No card was presented in time"),
    ],
)
def test_capture_outcomes_are_final_and_in_words(
    client: FlaskClient, world: World, status: CommandStatus, outcome: str, text: str
) -> None:
    command = capture(client, world, world.terminal.id)
    finish(command, status, outcome)
    fragment = client.get(f"{world.url}/commands/{command.id}").text
    assert text in fragment and "data-final" in fragment
    assert outcome not in fragment


def test_capture_not_answered_in_time_stops_polling(client: FlaskClient, world: World) -> None:
    command = capture(client, world, world.terminal.id)
    command.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    fragment = client.get(f"{world.url}/commands/{command.id}").text
    assert "No card was presented in time" in fragment and "data-final" in fragment


def test_capture_refuses_a_terminal_of_another_site(
    client: FlaskClient, world: World, make_site: Callable[..., Site]
) -> None:
    elsewhere = make_site("oak")
    door = sites.save_door(db.session, TEST_ACTOR, elsewhere, "Oak gate", sites.DoorMethods())
    foreign = terminals.provision_terminal(db.session, TEST_ACTOR, elsewhere, "Oak terminal", [door]).terminal
    db.session.commit()
    response = post(client, f"{world.url}/cards/capture", world.url, terminal=foreign.id)
    assert response.status_code == 422 and 'id="terminal-error"' in response.text
    assert db.session.scalar(select(func.count()).select_from(TerminalCommand)) == 0


def test_command_of_another_person_is_not_shown(
    client: FlaskClient, world: World, make_person: Callable[..., Person]
) -> None:
    command = capture(client, world, world.terminal.id)
    neighbour = make_person(world.site, "Wang Fang")
    assert client.get(f"/people/{neighbour.id}/commands/{command.id}").status_code == 404
    assert "Present the card" not in client.get(f"/people/{neighbour.id}?command={command.id}").text


def test_groups_are_added_and_removed(client: FlaskClient, world: World) -> None:
    page = client.get(world.url).text
    assert "Not in any access group" in page and '<label for="group">Add to group</label>' in page
    assert post(client, f"{world.url}/groups", world.url, group=world.group.id).status_code == 302
    db.session.expire_all()
    assert [g.name for g in world.person.access_groups] == ["Residents"]
    page = client.get(world.url).text
    assert "Residents" in page and ">Remove</button>" in page
    response = post(client, f"{world.url}/groups/{world.group.id}/remove", world.url)
    assert response.status_code == 302
    db.session.expire_all()
    assert world.person.access_groups == []
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"group.add_member", "group.remove_member"} <= actions


def test_group_of_another_site_is_refused(client: FlaskClient, world: World, make_site: Callable[..., Site]) -> None:
    elsewhere = make_site("oak")
    foreign = access.create_group(db.session, TEST_ACTOR, elsewhere, "Oak residents", [], [])
    db.session.commit()
    response = post(client, f"{world.url}/groups", world.url, group=foreign.id)
    assert response.status_code == 422 and 'id="group-error"' in response.text
    db.session.expire_all()
    assert world.person.access_groups == []


def person_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, URL) of every route of the person blueprint, with ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("person."):
            continue
        url = re.sub(r"<int:\w+>", "1", rule.rule)
        found.extend((method, url) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
    return found


def test_guard_is_refused_on_every_route(app: Flask, client: FlaskClient, make_user: Callable) -> None:
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    token = csrf_token(client.get("/").text)
    routes = person_routes(app)
    assert len(routes) >= 14
    for method, url in routes:
        response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 403, f"{method} {url} answered {response.status_code}"


def test_logged_out_visitor_is_sent_to_login(app: Flask, client: FlaskClient) -> None:
    for method, url in person_routes(app):
        if method == "GET":
            assert client.get(url).status_code == 302


def test_no_person_route_shows_a_secret(app: Flask, client: FlaskClient, keys: ServerKeys, make_user: Callable) -> None:
    subject = populate(keys)
    person = db.session.get(Person, subject.person_id)
    terminal = db.session.get(Terminal, subject.terminal_id)
    assert person is not None and terminal is not None
    command = commands.capture_card(db.session, TEST_ACTOR, terminal, person)
    db.session.commit()
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    needles = [*leak_needles(subject), b"04A2B3C4D5E6F7"]
    base = f"/people/{person.id}"
    urls = [base, f"{base}?command={command.id}", f"{base}/commands/{command.id}"]
    urls += [f"{base}/receipts/{r.id}" for r in erasure.receipts_of_person(db.session, person.id)]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_leak(response.get_data(), needles, f"GET {url}")
    page = client.get(base).text
    assert "Zhang Min" in page and "All terminals confirmed" in page and "North terminal" in page


# ---- "can this person get in?", the usual group, history ----------------------------------------------------------


def access_section(html: str) -> str:
    match = re.search(r'<section[^>]*data-section="access".*?</section>', html, re.S)
    assert match, "no access section"
    return match.group(0)


def test_without_a_group_the_page_says_why_nobody_lets_them_in(client: FlaskClient, world: World) -> None:
    section = access_section(client.get(world.url).text)
    assert "Opens no door now" in section
    assert 'data-blocker="no_groups"' in section and 'data-blocker="no_credential"' in section
    assert "They are in no access group" in section and "no active credential" in section


def test_with_a_group_and_a_card_the_doors_groups_and_hours_are_shown(
    client: FlaskClient, world: World, keys: ServerKeys
) -> None:
    access.add_member(db.session, TEST_ACTOR, world.group, world.person)
    credentials.add_card(db.session, TEST_ACTOR, keys, world.person, CARD)
    db.session.commit()
    section = access_section(client.get(world.url).text)
    assert "Opens 1 door now" in section and "data-blocker" not in section
    row = re.search(r"<tr data-door=.*?</tr>", section, re.S)
    assert row is not None
    assert "North gate" in row.group(0) and "Residents" in row.group(0) and "Opens now" in row.group(0)
    assert "Every day 00:00\u201324:00" in row.group(0) and "Key card" in row.group(0)
    assert "Hours (Asia/Shanghai)" in section


def test_outside_the_hours_the_reason_and_the_hours_are_in_words(
    client: FlaskClient, world: World, keys: ServerKeys
) -> None:
    # Open only on a weekday that is not today at the site: whatever the clock says, it is closed now.
    today = utcnow().astimezone(ZoneInfo(world.site.timezone)).weekday()
    other = (today + 3) % 7
    access.update_group(
        db.session,
        TEST_ACTOR,
        world.group,
        name="Residents",
        doors=world.group.doors,
        windows=[Window(other, 7 * 60, 22 * 60)],
        open_on_holidays=True,
    )
    access.add_member(db.session, TEST_ACTOR, world.group, world.person)
    credentials.add_card(db.session, TEST_ACTOR, keys, world.person, CARD)
    db.session.commit()
    section = access_section(client.get(world.url).text)
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[other]
    assert f"{day} 07:00\u201322:00" in section and "Closed now" in section
    assert 'data-blocker="outside_schedule"' in section and "outside all their access groups" in section
    assert re.search(r"Their hours next begin \d{4}-\d\d-\d\d 07:00 \(Asia/Shanghai, UTC\+8\)", section)


def test_the_group_dropdown_offers_the_usual_group_not_the_first_by_name(client: FlaskClient, world: World) -> None:
    # "Gym" sorts before "Residents"; with nothing marked and nobody in a group, nothing is preselected.
    select_html = re.search(r'<select id="group".*?</select>', client.get(world.url).text, re.S)
    assert select_html is not None and '<option value="" selected>Choose a group</option>' in select_html.group(0)
    set_usual_group(db.session, TEST_ACTOR, world.site, world.group)
    db.session.commit()
    select_html = re.search(r'<select id="group".*?</select>', client.get(world.url).text, re.S)
    assert select_html is not None
    assert f'<option value="{world.group.id}" selected>Residents (usual)</option>' in select_html.group(0)
    assert f'<option value="{world.other_group.id}">Gym</option>' in select_html.group(0)


def test_choosing_no_group_is_refused_at_the_field(client: FlaskClient, world: World) -> None:
    response = post(client, f"{world.url}/groups", world.url, group="")
    assert response.status_code == 422 and 'id="group-error" role="alert"' in response.text
    db.session.expire_all()
    assert world.person.access_groups == []


def test_history_shows_their_latest_events_and_links_to_the_events_page(client: FlaskClient, world: World) -> None:
    page = client.get(world.url).text
    assert "No entries yet" in page
    door = world.group.doors[0]
    start = utcnow() - timedelta(hours=1)
    for minute in range(25):
        db.session.add(
            AccessEvent(
                event_uid=str(uuid.uuid4()),
                site_id=world.site.id,
                terminal_id=world.terminal.id,
                door_id=door.id,
                person_pseudonym=world.person.pseudonym,
                method=EntryMethod.CARD,
                decision=Decision.GRANT if minute % 2 else Decision.DENY,
                reason="granted" if minute % 2 else "outside_schedule",
                occurred_at=start + timedelta(minutes=minute),
            )
        )
    db.session.commit()
    page = client.get(world.url).text
    history = re.search(r'<section[^>]*data-section="history".*?</section>', page, re.S)
    assert history is not None
    assert history.group(0).count("<tr data-event=") == 20
    assert "Outside the allowed hours" in history.group(0) and "Granted" in history.group(0)
    assert f'href="/events?person={world.person.pseudonym}"' in history.group(0)


def test_the_page_answers_in_chinese(client: FlaskClient, world: World, keys: ServerKeys) -> None:
    access.add_member(db.session, TEST_ACTOR, world.group, world.person)
    credentials.add_card(db.session, TEST_ACTOR, keys, world.person, CARD)
    db.session.commit()
    client.post("/language", data={"language": "zh_CN", "csrf_token": csrf_token(client.get("/").text)})
    page = client.get(world.url).text
    for words in ("此人能进门吗\uff1f", "现在可开 1 扇门", "每天 00:00\u201324:00", "凭证", "记录", "人脸通行是可选的"):
        assert words in page, words
    for english in ("Can this person get in?", "Every day", "Opens now", "History"):
        assert english not in page, english
