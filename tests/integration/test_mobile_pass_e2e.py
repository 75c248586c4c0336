"""A resident's visitor pass end to end: made in the app over HTTP, keyed at a door terminal that learns it over a
real, secured mosquitto, admitted once and refused after, and both entries shown back to the resident in the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.records import PassRecord
from server.extensions import db
from server.models import Door, Person, Site
from server.services.access import access
from server.services.accounts import app_accounts
from terminals import control
from terminals.relay import SimulatedRelay
from tests.conftest import PASSWORD, TEST_ACTOR
from tests.integration.mobile_rig import Answer, ApiClient, LiveMobileApi, serve_mobile_api
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

LOGIN = "li.wei"
DOOR_NAME = "Front gate"


@pytest.fixture
def estate(app: Flask, make_site: Any, make_door: Any, make_person: Any) -> dict[str, Any]:
    """A site with a front gate, a group over it, and a resident of that group who has the app."""
    site: Site = make_site()
    front: Door = make_door(site, DOOR_NAME)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [front], ALWAYS.windows)
    db.session.commit()
    resident: Person = make_person(site, "Li Wei")
    access.add_member(db.session, TEST_ACTOR, group, resident)
    app_accounts.enable_account(db.session, TEST_ACTOR, resident, username=LOGIN, password=PASSWORD)
    db.session.commit()
    return {"site": site, "front": front, "resident": resident}


@pytest.fixture
def mobile_api(app: Flask, key_dir: Path, keys: ServerKeys) -> Iterator[LiveMobileApi]:
    """The mobile API on the test database, served over HTTP."""
    with serve_mobile_api(app.config["SQLALCHEMY_DATABASE_URI"], key_dir, keys) as server:
        yield server


def signed_in(server: LiveMobileApi) -> ApiClient:
    """The resident's app, signed in over HTTP with their password."""
    api = ApiClient(server)
    answer = api.sign_in(LOGIN, PASSWORD)
    assert answer.status == 200, answer.body
    return api


def create_pass(api: ApiClient, door: Door) -> Answer:
    """A single-use pass for `door`, valid from a minute ago for two hours."""
    now = datetime.now(UTC)
    body = {
        "visitor_name": "Zhang Min",
        "valid_from": (now - timedelta(minutes=1)).isoformat(),
        "valid_until": (now + timedelta(hours=2)).isoformat(),
        "door_ids": [door.id],
        "uses": 1,
    }
    return api.post("/passes", body)


def held_pass(handle: TerminalHandle, pass_id: int) -> PassRecord | None:
    """What the terminal holds of a pass (None until it has heard of it)."""
    store = handle.store()
    try:
        return store.visitor_pass(pass_id)
    finally:
        store.close()


def key_code(handle: TerminalHandle, door: Door, digits: str) -> dict[str, Any]:
    """Type a code on the terminal's keypad (through its local control socket) and read what the door showed."""
    return control.send(Path(handle.document["control_socket"]), {"op": "code", "digits": digits, "door": door.id})


def unlocks(relay: SimulatedRelay) -> list[int]:
    """The doors the relay unlocked, in order."""
    return [door for _, door, unlocked in relay.history if unlocked]


def pass_events(api: ApiClient, pass_id: int) -> list[dict[str, Any]]:
    """The pass's entries as the app shows them (newest first)."""
    answer = api.get(f"/passes/{pass_id}/events")
    assert answer.status == 200, answer.body
    items: list[dict[str, Any]] = answer.body["items"]
    return items


def test_visitor_is_admitted_once_and_the_resident_sees_both_tries(
    rig: SyncRig, estate: dict[str, Any], mobile_api: LiveMobileApi
) -> None:
    front: Door = estate["front"]
    terminal = rig.add_terminal(estate["site"], [front], "Front gate terminal")
    rig.start_worker()
    relay = SimulatedRelay()
    terminal.start(relay=relay)

    api = signed_in(mobile_api)
    created = create_pass(api, front)
    assert created.status == 201, created.body
    issued = created.body
    pass_id = issued["pass"]["id"]
    code = issued["code"]
    assert re.fullmatch(r"\d{6}", code)
    assert issued["qr_token"].startswith("GHP1:")
    assert (issued["pass"]["status"], issued["pass"]["uses_count"]) == ("active", 0)

    # The server journals the pass; the worker sends it to the terminal over MQTT.
    wait_for(
        lambda: terminal.in_sync() and held_pass(terminal, pass_id) is not None,
        timeout=30,
        what="the terminal to hold the pass",
    )

    first = key_code(terminal, front, code)
    assert (first["door"], first["granted"]) == (front.id, True)
    wait_for(lambda: unlocks(relay) == [front.id], what="the front gate to unlock")

    second = key_code(terminal, front, code)
    assert (second["door"], second["granted"]) == (front.id, False)
    assert second["message"].startswith("Not admitted")
    assert unlocks(relay) == [front.id]  # the relay was not touched again

    # The terminal delivers both events; the resident sees them in the app.
    wait_for(lambda: len(pass_events(api, pass_id)) == 2, timeout=30, what="both entries in the app")
    page = api.get(f"/passes/{pass_id}/events")
    assert page.status == 200, page.body
    assert page.body["next_before"] is None
    refused, admitted = page.body["items"]  # newest first
    door = {"id": front.id, "name": DOOR_NAME}
    assert (admitted["decision"], admitted["reason"], admitted["method"], admitted["door"]) == (
        "grant",
        "granted",
        "visitor_code",
        door,
    )
    assert (refused["decision"], refused["reason"], refused["method"], refused["door"]) == (
        "deny",
        "used_up",
        "visitor_code",
        door,
    )
    assert refused["id"] != admitted["id"]
    assert set(admitted) == {"id", "occurred_at", "door", "method", "decision", "reason"}  # no pass code, no person

    shown = api.get(f"/passes/{pass_id}")
    assert shown.status == 200, shown.body
    assert (shown.body["uses_allowed"], shown.body["uses_count"], shown.body["status"]) == (1, 1, "used_up")
    assert [d["id"] for d in shown.body["doors"]] == [front.id]


@sqlite_only
def test_used_code_is_refused_at_a_second_terminal_once_it_syncs(
    rig: SyncRig, estate: dict[str, Any], mobile_api: LiveMobileApi
) -> None:
    front: Door = estate["front"]
    a = rig.add_terminal(estate["site"], [front], "Front gate A")
    b = rig.add_terminal(estate["site"], [front], "Front gate B")
    rig.start_worker()
    relay_a, relay_b = SimulatedRelay(), SimulatedRelay()
    a.start(relay=relay_a)
    b.start(relay=relay_b)

    api = signed_in(mobile_api)
    created = create_pass(api, front)
    assert created.status == 201, created.body
    pass_id, code = created.body["pass"]["id"], created.body["code"]
    wait_for(
        lambda: all(t.in_sync() and held_pass(t, pass_id) is not None for t in (a, b)),
        timeout=30,
        what="both terminals to hold the pass",
    )

    assert key_code(a, front, code)["granted"] is True

    # A's event reaches the server, which counts the use and tells B through the journal.
    def b_knows_it_is_used() -> bool:
        record = held_pass(b, pass_id)
        return record is not None and record.uses_count == 1

    wait_for(b_knows_it_is_used, timeout=30, what="terminal B to learn the pass is used")
    assert key_code(b, front, code)["granted"] is False
    assert unlocks(relay_a) == [front.id]
    assert relay_b.history == []

    wait_for(lambda: len(pass_events(api, pass_id)) == 2, timeout=30, what="both entries in the app")
    refused, admitted = pass_events(api, pass_id)
    assert (admitted["decision"], admitted["reason"]) == ("grant", "granted")
    assert (refused["decision"], refused["reason"]) == ("deny", "used_up")
    shown = api.get(f"/passes/{pass_id}")
    assert (shown.body["uses_count"], shown.body["status"]) == (1, "used_up")
