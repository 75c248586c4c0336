"""The resident's own records: door history, erasure receipts and the data export; never anyone else's."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.messages import Decision, EntryMethod
from server.extensions import db
from server.models import (
    AccessEvent,
    AuditEntry,
    ConsentChannel,
    Credential,
    Door,
    Person,
    ResidentAccount,
    Site,
    utcnow,
)
from server.services.face import consent
from server.services.face import templates as face_templates
from server.services.face.consent_rules import local_date
from server.services.people import credentials
from server.services.privacy import erasure
from server.services.privacy.subject_access import subject_access
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR
from tests.mobile.conftest import Household
from tests.server.services.test_subject_access import FORBIDDEN_KEY, assert_no_leak, keys_of, leak_needles, populate
from tests.support.privacy import enable_face, give_consent

MODEL = "test-model-000000000000"
VECTOR = bytes(range(256)) * 2


def _event(
    site_id: int,
    door_id: int | None,
    pseudonym: str | None,
    at: datetime,
    decision: Decision = Decision.GRANT,
    method: EntryMethod = EntryMethod.CARD,
) -> AccessEvent:
    event_ = AccessEvent(
        event_uid=str(uuid.uuid4()),
        site_id=site_id,
        door_id=door_id,
        person_pseudonym=pseudonym,
        method=method,
        decision=decision,
        reason="ok" if decision is Decision.GRANT else "outside_schedule",
        occurred_at=at,
    )
    db.session.add(event_)
    db.session.flush()
    return event_


# ---- GET /me/events -----------------------------------------------------------------------------------------------


def test_events_are_the_callers_own_newest_first_with_door_names(
    mobile: FlaskClient, make_household: Callable[..., Household], make_door: Callable[..., Door]
) -> None:
    mine = make_household()
    other = make_household(mine.site, name="Wang Fang")
    north, garden = mine.doors
    gone = make_door(mine.site, "Old gate")
    now = utcnow()
    first = _event(mine.site.id, north.id, mine.person.pseudonym, now - timedelta(hours=3))
    _event(mine.site.id, north.id, other.person.pseudonym, now - timedelta(hours=2))
    second = _event(
        mine.site.id, garden.id, mine.person.pseudonym, now - timedelta(hours=1), Decision.DENY, EntryMethod.APP_CODE
    )
    third = _event(mine.site.id, gone.id, mine.person.pseudonym, now)
    _event(mine.site.id, garden.id, None, now)  # a visitor's
    db.session.delete(gone)
    db.session.commit()

    response = mobile.get("/api/v1/me/events", headers=mine.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["next_before"] is None
    assert [e["id"] for e in body["items"]] == [third.id, second.id, first.id]
    newest, middle, oldest = body["items"]
    assert newest["door"] is None  # the door has since been removed
    assert middle == {
        "id": second.id,
        "occurred_at": middle["occurred_at"],
        "door": {"id": garden.id, "name": "Garden door"},
        "method": "app_code",
        "decision": "deny",
        "reason": "outside_schedule",
    }
    assert datetime.fromisoformat(middle["occurred_at"]) == second.occurred_at
    assert oldest["door"] == {"id": north.id, "name": "North gate"} and oldest["decision"] == "grant"
    assert other.person.pseudonym not in response.text and mine.person.pseudonym not in response.text

    theirs = mobile.get("/api/v1/me/events", headers=other.headers).get_json()["items"]
    assert len(theirs) == 1 and theirs[0]["id"] not in {first.id, second.id, third.id}


def test_events_page_by_id(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    other = make_household(home.site, name="Wang Fang")
    now = utcnow()
    ids = []
    for minutes in range(5, 0, -1):
        ids.append(_event(home.site.id, home.doors[0].id, home.person.pseudonym, now - timedelta(minutes=minutes)).id)
        _event(home.site.id, home.doors[0].id, other.person.pseudonym, now - timedelta(minutes=minutes))
    db.session.commit()
    newest_first = ids[::-1]

    seen: list[int] = []
    before: int | None = None
    for expected_next in (newest_first[1], newest_first[3], None):
        query = "limit=2" + (f"&before={before}" if before is not None else "")
        body = mobile.get(f"/api/v1/me/events?{query}", headers=home.headers).get_json()
        assert len(body["items"]) <= 2 and body["next_before"] == expected_next
        seen += [e["id"] for e in body["items"]]
        before = body["next_before"]
    assert seen == newest_first
    # Exactly a full last page: no next page.
    body = mobile.get("/api/v1/me/events?limit=5", headers=home.headers).get_json()
    assert [e["id"] for e in body["items"]] == newest_first and body["next_before"] is None


def test_event_paging_bounds_are_enforced(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    for query in ("limit=0", "limit=201", "limit=x", "before=0", "before=-3", "person=someone"):
        response = mobile.get(f"/api/v1/me/events?{query}", headers=home.headers)
        assert response.status_code == 400, query
        assert response.get_json()["error"] == "invalid_request", query
    assert mobile.get("/api/v1/me/events?limit=200", headers=home.headers).status_code == 200
    assert mobile.get("/api/v1/me/events").status_code == 401


def test_events_load_door_names_in_one_query(
    mobile: FlaskClient, mobile_app: Flask, make_household: Callable[..., Household], make_door: Callable[..., Door]
) -> None:
    home = make_household()
    doors = [*home.doors, *(make_door(home.site, f"Door {n}") for n in range(4))]
    now = utcnow()
    for n in range(24):
        _event(home.site.id, doors[n % len(doors)].id, home.person.pseudonym, now - timedelta(minutes=n))
    db.session.commit()
    with mobile_app.app_context():
        engine = db.engine
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        counts = []
        for limit in (2, 24):
            statements.clear()
            body = mobile.get(f"/api/v1/me/events?limit={limit}", headers=home.headers).get_json()
            assert len(body["items"]) == limit and all(e["door"] is not None for e in body["items"])
            counts.append(len(statements))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert counts[0] == counts[1]


# ---- GET /me/erasure-receipts -------------------------------------------------------------------------------------


def test_erasure_receipts_show_terminal_confirmations_of_the_callers_templates(
    mobile: FlaskClient,
    make_site: Callable[..., Site],
    make_door: Callable[..., Door],
    make_household: Callable[..., Household],
    keys: ServerKeys,
) -> None:
    site = make_site()
    lobby = make_door(site, "Lobby", face=True)
    enable_face(site, MODEL)
    mine = make_household(site)
    other = make_household(site, name="Wang Fang")
    east = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Lobby east", [lobby]).terminal
    west = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Lobby west", [lobby]).terminal
    db.session.commit()
    templates = {}
    for home, holders in ((mine, [east, west]), (other, [east])):
        template = face_templates.store_template(
            db.session, TEST_ACTOR, keys, home.person, give_consent(home.person), MODEL, VECTOR
        )
        for terminal in holders:
            erasure.record_holdings(db.session, terminal.id, [template.id])
        templates[home.person.id] = template.id
    db.session.commit()
    [withdrawn] = consent.withdraw_consent(db.session, TEST_ACTOR, mine.person, ConsentChannel.APP)
    [theirs] = consent.withdraw_consent(db.session, TEST_ACTOR, other.person, ConsentChannel.APP)
    db.session.flush()
    erasure.confirm_items(db.session, east, [templates[mine.person.id]])
    db.session.commit()

    response = mobile.get("/api/v1/me/erasure-receipts", headers=mine.headers)
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert item["id"] == withdrawn.id != theirs.id
    assert item["reason"] == "consent_withdrawn" and item["model_id"] == MODEL and item["complete"] is False
    assert [t["name"] for t in item["terminals"]] == ["Lobby east", "Lobby west"]
    assert item["terminals"][0]["confirmed_at"] is not None and item["terminals"][1]["confirmed_at"] is None
    assert datetime.fromisoformat(item["erased_on_server_at"]) == withdrawn.erased_on_server_at
    assert east.ident not in response.text and west.ident not in response.text

    # The other terminal catches up; a later manager erasure comes first.
    erasure.confirm_through(db.session, west, site.journal_seq)
    again = face_templates.store_template(
        db.session, TEST_ACTOR, keys, mine.person, give_consent(mine.person), MODEL, VECTOR
    )
    db.session.commit()
    assert again.id != templates[mine.person.id]
    [erased] = consent.erase_face(db.session, TEST_ACTOR, mine.person)
    db.session.commit()
    items = mobile.get("/api/v1/me/erasure-receipts", headers=mine.headers).get_json()["items"]
    assert [i["id"] for i in items] == [erased.id, withdrawn.id]
    assert items[0]["reason"] == "manager" and items[0]["terminals"] == [] and items[0]["complete"] is True
    assert items[1]["complete"] is True and all(t["confirmed_at"] for t in items[1]["terminals"])

    their_items = mobile.get("/api/v1/me/erasure-receipts", headers=other.headers).get_json()["items"]
    assert [i["id"] for i in their_items] == [theirs.id]


def test_no_receipts_without_erasures(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    response = mobile.get("/api/v1/me/erasure-receipts", headers=home.headers)
    assert response.status_code == 200 and response.get_json() == {"items": []}


# ---- GET /me/export -----------------------------------------------------------------------------------------------


def test_export_is_the_callers_subject_access_report_without_secrets(
    mobile: FlaskClient,
    make_account: Callable[..., ResidentAccount],
    bearer: Callable[[ResidentAccount], dict[str, str]],
    keys: ServerKeys,
) -> None:
    subject = populate(keys)  # a card, an app code, face templates held and erased, a pass, events, a bystander
    person = db.session.get(Person, subject.person_id)
    assert person is not None
    headers = bearer(make_account(person, username="zhangmin"))
    bystander = db.session.scalars(select(Person).where(Person.full_name == "Someone Else")).one()
    credentials.add_card(db.session, TEST_ACTOR, keys, bystander, "04998877665544")
    db.session.commit()

    response = mobile.get("/api/v1/me/export", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    disposition = re.fullmatch(
        r'attachment; filename="gatehouse-my-data-(\d{4}-\d{2}-\d{2})\.json"', response.headers["Content-Disposition"]
    )
    assert disposition is not None
    generated = datetime.fromisoformat(body["generated_at"])
    assert disposition.group(1) == local_date(person.site, generated).isoformat()

    # The very report the service makes, nothing trimmed or reshaped (the export's own audit entry came after it).
    expected = subject_access(db.session, person, generated)
    assert set(body) == set(expected)
    assert {k: v for k, v in body.items() if k != "audit"} == {k: v for k, v in expected.items() if k != "audit"}
    assert body["audit"] == expected["audit"][1:] and expected["audit"][0]["action"] == "person.subject_access"
    assert body["person"]["full_name"] == "Zhang Min" and len(body["access_events"]) == 3

    # Never a template, a seed, a hash, or someone else.
    assert_no_leak(response.data, leak_needles(subject), "the resident's export")
    hashes = [h for h in db.session.scalars(select(Credential.lookup_hash)) if h]
    assert len(hashes) == 2
    for digest in hashes:
        assert digest.lower() not in response.text.lower()
    assert [k for k in keys_of(body) if FORBIDDEN_KEY.search(k)] == []
    assert "Someone Else" not in response.text and bystander.pseudonym not in response.text
    assert json.loads(response.text) == body

    # Audited as the resident, and committed.
    db.session.expire_all()
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "person.subject_access")).all()
    assert entry.actor_label == f"resident:{person.pseudonym}"
    assert (entry.target_type, entry.target_id) == ("person", str(person.id)) and entry.details == {"format": "json"}


def test_export_of_a_resident_with_little(mobile: FlaskClient, make_household: Callable[..., Household]) -> None:
    home = make_household()
    other = make_household(home.site, name="Wang Fang")
    body = mobile.get("/api/v1/me/export", headers=home.headers).get_json()
    assert body["person"]["id"] == home.person.id and body["credentials"] == []
    assert [g["doors"] for g in body["access_groups"]] == [["Garden door", "North gate"]]
    assert body["controller"]["controller_name"] is None and body["face"]["templates"] == []
    assert other.person.full_name not in json.dumps(body)
    assert mobile.get("/api/v1/me/export").status_code == 401


# ---- the OpenAPI document -----------------------------------------------------------------------------------------


def test_openapi_documents_the_residents_own_routes(mobile: FlaskClient) -> None:
    paths = mobile.get("/api/v1/openapi.json").get_json()["paths"]
    expected = {
        ("/api/v1/me", "get", "200", "Profile"),
        ("/api/v1/me/credentials", "get", "200", "CredentialList"),
        ("/api/v1/me/app-code", "post", "201", "AppCodeIssued"),
        ("/api/v1/me/doors", "get", "200", "DoorList"),
        ("/api/v1/me/events", "get", "200", "EventPage"),
        ("/api/v1/me/erasure-receipts", "get", "200", "ReceiptList"),
        ("/api/v1/me/export", "get", "200", "SubjectAccessReport"),
    }
    for path, method, status, schema in expected:
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}] and "401" in operation["responses"], path
        ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith(f"/{schema}"), (path, ref)
        assert operation["summary"] and operation["description"]
    parameters = {p["name"]: p for p in paths["/api/v1/me/events"]["get"]["parameters"]}
    assert set(parameters) == {"before", "limit"} and parameters["limit"]["schema"]["maximum"] == 200
