"""The integration API: keys and scopes (401/403), site reach (404), cursor paging, door opens, nothing secret."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.link import event_ingest
from server.models import (
    ApiKey,
    AuditEntry,
    CommandOp,
    Credential,
    DoorLiveState,
    Person,
    TerminalCommand,
    utcnow,
)
from server.services.integrations import api_keys
from server.services.people import credentials
from tests.conftest import TEST_ACTOR
from tests.server.api_ops.conftest import World, add_events, bearer

API = "/api/ops/v1"
ROUTES = {
    api_keys.EVENTS_READ: ("GET", f"{API}/events"),
    api_keys.ALARMS_READ: ("GET", f"{API}/alarms"),
    api_keys.DOORS_READ: ("GET", f"{API}/doors"),
}


def _call(client: FlaskClient, method: str, path: str, key: str | None) -> tuple[int, dict]:
    response = client.open(path, method=method, headers=bearer(key) if key else {})
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json()


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer gh_ops_12345678_wrong"])
def test_no_or_bad_key_is_401_in_the_error_shape(client: FlaskClient, world: World, header: str | None) -> None:
    for method, path in [*ROUTES.values(), ("POST", f"{API}/doors/{world.north_gate.id}/open")]:
        response = client.open(path, method=method, headers={"Authorization": header} if header else {})
        assert response.status_code == 401
        assert set(response.get_json()) == {"error", "message"} and response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_each_route_needs_its_scope(client: FlaskClient, world: World, make_key: Callable[..., str]) -> None:
    for scope in api_keys.SCOPES:
        key = make_key((scope,), name=f"only {scope}")
        for needed, (method, path) in ROUTES.items():
            status, body = _call(client, method, path, key)
            assert status == (200 if needed == scope else 403), (scope, path)
            if status == 403:
                assert body["error"] == "forbidden" and needed in body["message"]
        status, body = _call(client, "POST", f"{API}/doors/{world.north_gate.id}/open", key)
        assert status == (202 if scope == api_keys.DOORS_COMMAND else 403)


def test_a_revoked_key_gets_401_at_once(client: FlaskClient, world: World, make_key: Callable[..., str]) -> None:
    key = make_key()
    assert _call(client, "GET", f"{API}/doors", key)[0] == 200
    row = db.session.scalar(select(ApiKey))
    api_keys.revoke(db.session, TEST_ACTOR, row.id)
    db.session.commit()
    status, body = _call(client, "GET", f"{API}/doors", key)
    assert status == 401 and body["error"] == "unauthorized"


def test_a_site_key_sees_only_its_site(client: FlaskClient, world: World, make_key: Callable[..., str]) -> None:
    add_events(world.north, world.north_gate, 2)
    add_events(world.south, world.south_gate, 3)
    key = make_key(site=world.north)
    _, events = _call(client, "GET", f"{API}/events", key)
    assert [e["site_id"] for e in events["items"]] == [world.north.id] * 2
    _, doors = _call(client, "GET", f"{API}/doors", key)
    assert [d["id"] for d in doors["items"]] == [world.north_gate.id]
    _, alarms = _call(client, "GET", f"{API}/alarms", key)
    assert {a["site_id"] for a in alarms["items"]} == {world.north.id}
    # Another site's door and site are "not found", never "forbidden".
    status, body = _call(client, "POST", f"{API}/doors/{world.south_gate.id}/open", key)
    assert status == 404 and body["error"] == "not_found"
    assert _call(client, "GET", f"{API}/events?site_id={world.south.id}", key)[0] == 404
    assert db.session.scalar(select(TerminalCommand)) is None


def test_cursor_paging_misses_nothing_and_repeats_nothing(
    client: FlaskClient, world: World, make_key: Callable[..., str]
) -> None:
    add_events(world.north, world.north_gate, 7)
    add_events(world.south, world.south_gate, 5, topic="access.denied")
    key = make_key((api_keys.EVENTS_READ,))
    seen: list[int] = []
    after = 0
    while True:
        status, page = _call(client, "GET", f"{API}/events?after={after}&limit=3", key)
        assert status == 200
        seen += [e["id"] for e in page["items"]]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 12
    add_events(world.north, world.north_gate, 1)
    _, page = _call(client, "GET", f"{API}/events?after={after}", key)
    assert len(page["items"]) == 1 and page["items"][0]["id"] > after
    _, denied = _call(client, "GET", f"{API}/events?topic=access.denied&topic=door.state", key)
    assert {e["type"] for e in denied["items"]} == {"access.denied"} and len(denied["items"]) == 5


@pytest.mark.parametrize(
    "query", ["after=-1", "limit=0", "limit=501", "topic=nope", "site_id=abc", "unknown=1", "after=x"]
)
def test_bad_queries_are_400(client: FlaskClient, world: World, make_key: Callable[..., str], query: str) -> None:
    status, body = _call(client, "GET", f"{API}/events?{query}", make_key())
    assert status == 400 and body["error"] == "invalid_request"


def test_door_board_and_alarms(client: FlaskClient, world: World, make_key: Callable[..., str]) -> None:
    db.session.add(DoorLiveState(door_id=world.north_gate.id, state="forced_open", supervised=True, since=utcnow()))
    db.session.commit()
    key = make_key()
    _, doors = _call(client, "GET", f"{API}/doors", key)
    north = next(d for d in doors["items"] if d["id"] == world.north_gate.id)
    assert north["state"] == "forced_open" and north["supervised"] is True
    assert north["terminals"][0]["id"] == world.north_terminal.id
    south = next(d for d in doors["items"] if d["id"] == world.south_gate.id)
    assert south["state"] is None
    _, alarms = _call(client, "GET", f"{API}/alarms?state=all", key)
    assert len(alarms["items"]) == 2 and {a["state"] for a in alarms["items"]} == {"open"}


def test_door_open_queues_the_console_command_and_is_audited(
    client: FlaskClient, world: World, make_key: Callable[..., str]
) -> None:
    key = make_key((api_keys.DOORS_COMMAND,), name="Building automation")
    response = client.post(
        f"{API}/doors/{world.north_gate.id}/open", json={"reason": "delivery at the gate"}, headers=bearer(key)
    )
    assert response.status_code == 202
    command = db.session.scalar(select(TerminalCommand))
    assert command.op is CommandOp.OPEN_DOOR and response.get_json()["command"] == command.ref
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "terminal.open_door"))
    assert entry.actor_label.startswith("api-key:") and entry.details["reason"] == "delivery at the gate"
    assert client.post(f"{API}/doors/999999/open", headers=bearer(key)).status_code == 404


def test_every_use_is_audited_at_most_once_a_minute(
    client: FlaskClient, world: World, make_key: Callable[..., str]
) -> None:
    key = make_key()
    for _ in range(3):
        assert _call(client, "GET", f"{API}/doors", key)[0] == 200
    uses = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "api_key.used")))
    assert len(uses) == 1 and uses[0].details == {"request": f"GET {API}/doors"}
    assert db.session.scalar(select(ApiKey)).last_used_at is not None


def test_nothing_biometric_or_credential_leaves(
    client: FlaskClient, world: World, make_key: Callable[..., str], make_person: Callable[..., Person], keys
) -> None:
    person = make_person(world.north, "Zhang Min")
    credentials.add_card(db.session, TEST_ACTOR, keys, person, "04A1B2C3")
    credentials.add_id_document(db.session, TEST_ACTOR, keys, person, "11010519491231002X")
    db.session.commit()
    # Events stored as the worker stores them (so the feed's own payload is what is checked), one an alarm.
    sender = event_ingest.sender_of(db.session, world.north_terminal)
    records = [
        EventRecord(uid=str(uuid.uuid4()), door=world.north_gate.id, person=person.pseudonym, at=utcnow(),
                    method=method, decision=decision, reason=reason)
        for method, decision, reason in ((EntryMethod.CARD, Decision.GRANT, "granted"),
                                         (EntryMethod.ID_DOCUMENT, Decision.DENY, "unknown_id"),
                                         (EntryMethod.APP_CODE, Decision.ALARM, "brute_force"))
    ]  # fmt: skip
    event_ingest.ingest(db.session, [(sender, records)])
    db.session.commit()
    key = make_key()
    text = ""
    for method, path in ROUTES.values():
        text += json.dumps(_call(client, method, path + "?" + ("state=all" if "alarms" in path else ""), key)[1])
    assert "04A1B2C3" not in text and "11010519491231002X" not in text and "Zhang Min" not in text
    hashes = [c.lookup_hash for c in db.session.scalars(select(Credential))]
    assert all(h and h not in text for h in hashes)
    assert not re.search(r"template|embedding|photo|secret|key_hash", text)
    assert key not in text
    assert person.pseudonym in text and "brute_force" in text  # the events are there, by pseudonym only


def test_unknown_addresses_answer_in_the_error_shape(client: FlaskClient, make_key: Callable[..., str]) -> None:
    status, body = _call(client, "GET", f"{API}/nope", make_key())
    assert status == 404 and body["error"] == "not_found"


def test_a_wrong_method_is_405_with_allow(client: FlaskClient, make_key: Callable[..., str]) -> None:
    response = client.delete(f"{API}/events", headers=bearer(make_key()))
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert response.get_json()["error"] == "method_not_allowed"
