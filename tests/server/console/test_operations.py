"""The operations screen: who may see it, what it shows and filters, alarms acknowledged and resolved with a
comment, and its event stream (items after Last-Event-ID, in order, only the watched sites and doors)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.messages import Decision, DoorState, EntryMethod, EventRecord
from server.console.operations.routes import SETTINGS_KEY
from server.console.operations.rows import short_time
from server.console.operations.stream import Settings, parse_after
from server.extensions import db
from server.link import event_ingest
from server.models import (
    Alarm,
    AlarmKind,
    AlarmSeverity,
    AuditEntry,
    ConsoleRole,
    Door,
    DoorLiveState,
    FeedKind,
    PersonKind,
    utcnow,
)
from server.models.console import ConsoleSession
from server.services.access import access, sites
from server.services.operations import feed
from server.services.people import people
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, csrf_token, login

AT = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


@pytest.fixture
def world(app: Flask, make_user: Any) -> dict[str, Any]:
    """Two sites with a terminal each; a door group on the north site; a staff member and a resident; users."""
    north = sites.create_site(db.session, TEST_ACTOR, code="north", name="North Park")
    south = sites.create_site(db.session, TEST_ACTOR, code="south", name="South Court")
    gate = sites.save_door(db.session, TEST_ACTOR, north, "Main gate", sites.DoorMethods())
    side = sites.save_door(db.session, TEST_ACTOR, north, "Side door", sites.DoorMethods())
    lobby = sites.save_door(db.session, TEST_ACTOR, south, "Lobby", sites.DoorMethods())
    t_north = terminals.provision_terminal(db.session, TEST_ACTOR, north, "North terminal", [gate, side]).terminal
    t_south = terminals.provision_terminal(db.session, TEST_ACTOR, south, "South terminal", [lobby]).terminal
    group = access.create_group(db.session, TEST_ACTOR, north, "Gate only", [gate], ALWAYS.windows)
    guard = people.create_person(db.session, TEST_ACTOR, north, full_name="Zhao Guard", kind=PersonKind.STAFF)
    resident = people.create_person(db.session, TEST_ACTOR, north, full_name="Qian Resident")
    db.session.commit()
    make_user("guard1", ConsoleRole.GUARD)
    make_user("manager1", ConsoleRole.MANAGER)
    return {
        "north": north.id,
        "south": south.id,
        "gate": gate.id,
        "side": side.id,
        "lobby": lobby.id,
        "t_north": t_north.id,
        "t_south": t_south.id,
        "group": group.id,
        "staff": guard.pseudonym,
        "resident": resident.pseudonym,
    }


def store_events(world: dict[str, Any], *specs: tuple[str, str | None, Decision]) -> list[int]:
    """Store access events through the real ingest (door name, pseudonym, decision); their feed ids, in order."""
    senders = {
        "north": event_ingest.Sender(world["t_north"], world["north"], frozenset({world["gate"], world["side"]})),
        "south": event_ingest.Sender(world["t_south"], world["south"], frozenset({world["lobby"]})),
    }
    before = feed.latest_id(db.session)
    for door, person, decision in specs:
        site = "south" if door == "lobby" else "north"
        record = EventRecord(
            uid=str(uuid.uuid4()),
            door=world[door],
            method=EntryMethod.CARD,
            decision=decision,
            reason="granted" if decision is Decision.GRANT else "unknown",
            person=person,
            at=AT,
        )
        event_ingest.ingest(db.session, [(senders[site], [record])])
    db.session.commit()
    return [item.id for item in feed.items_after(db.session, before, limit=1000)]


def raise_alarm(world: dict[str, Any], door: str = "gate", severity: AlarmSeverity = AlarmSeverity.CRITICAL) -> int:
    """An open forced-door alarm, written with its feed item as the alarms service does."""
    site = "south" if door == "lobby" else "north"
    alarm = Alarm(
        site_id=world[site],
        kind=AlarmKind.DOOR_FORCED,
        severity=severity,
        ref=str(uuid.uuid4()),
        door_id=world[door],
        terminal_id=world["t_south" if site == "south" else "t_north"],
        message="Opened without a grant.",
        raised_at=utcnow(),
    )
    db.session.add(alarm)
    db.session.flush()
    item = feed.NewItem(FeedKind.ALARM, "alarm.raised", alarm.id, alarm.site_id, {"id": alarm.id})
    feed.record(db.session, [item])
    db.session.commit()
    return alarm.id


def feed_ids(html: str) -> list[int]:
    """Feed ids of the rows on the page, in order."""
    return [int(m) for m in re.findall(r'data-feed="(\d+)"', html)]


# ---- the page -----------------------------------------------------------------------------------------------------


def test_refused_without_login(client: FlaskClient, world: dict[str, Any]) -> None:
    for path in ("/operations", "/operations/stream"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]


@pytest.mark.parametrize("user", ["guard1", "manager1"])
def test_page_shows_board_alarms_and_feed(client: FlaskClient, world: dict[str, Any], user: str) -> None:
    ids = store_events(world, ("gate", world["staff"], Decision.GRANT), ("side", world["resident"], Decision.DENY))
    db.session.add(DoorLiveState(door_id=world["gate"], state=DoorState.FORCED_OPEN, since=AT, supervised=True))
    db.session.commit()
    alarm_id = raise_alarm(world)
    login(client, user)
    page = client.get("/operations")
    assert page.status_code == 200
    html = page.text
    assert feed_ids(html) == sorted(ids, reverse=True)
    # Staff by name, residents by pseudonym only.
    assert "Zhao Guard" in html and "Qian Resident" not in html and world["resident"] in html
    assert f'data-alarm="{alarm_id}"' in html and "Door forced open" in html
    assert re.search(f'data-door="{world["gate"]}" data-state="forced_open"', html)
    assert re.search(f'data-door="{world["lobby"]}" data-state="unknown"', html)
    assert "Forced open" in html and "State unknown" in html
    # The stream resumes after the newest item the page was drawn from.
    assert f"after={max(ids) + 1}" in html.replace("&amp;", "&")
    resolve_button = f"operations/alarms/{alarm_id}/resolve"
    assert (resolve_button in html) == (user == "manager1")


def test_guard_lands_on_operations_after_login(client: FlaskClient, world: dict[str, Any]) -> None:
    assert login(client, "guard1").headers["Location"].endswith("/operations")
    nav = client.get("/operations").text.partition('class="main-nav"')[2]
    assert nav.index('href="/operations"') < nav.index('href="/"')


def test_manager_still_lands_on_dashboard(client: FlaskClient, world: dict[str, Any]) -> None:
    assert login(client, "manager1").headers["Location"].endswith("/")


def test_filters_by_site_and_door_group(client: FlaskClient, world: dict[str, Any]) -> None:
    gate, side, lobby = store_events(
        world,
        ("gate", world["resident"], Decision.GRANT),
        ("side", world["resident"], Decision.GRANT),
        ("lobby", None, Decision.DENY),
    )
    login(client, "guard1")
    assert feed_ids(client.get(f"/operations?site={world['south']}").text) == [lobby]
    assert feed_ids(client.get(f"/operations?site={world['north']}").text) == [side, gate]
    by_group = client.get(f"/operations?group={world['group']}").text
    assert feed_ids(by_group) == [gate]
    assert f'data-door="{world["gate"]}"' in by_group and f'data-door="{world["side"]}"' not in by_group
    refused = client.get("/operations?site=nonsense")
    assert refused.status_code == 200 and "Choose a site and door group" in refused.text


# ---- alarms -------------------------------------------------------------------------------------------------------


def act(client: FlaskClient, alarm_id: int, step: str, comment: str) -> Any:
    token = csrf_token(client.get("/operations").text)
    return client.post(f"/operations/alarms/{alarm_id}/{step}", data={"comment": comment, "csrf_token": token})


@pytest.mark.parametrize("comment", ["", "   "])
def test_acknowledge_requires_a_comment(client: FlaskClient, world: dict[str, Any], comment: str) -> None:
    alarm_id = raise_alarm(world)
    login(client, "guard1")
    answer = act(client, alarm_id, "acknowledge", comment)
    assert answer.status_code == 400
    assert f'id="comment-{alarm_id}-error"' in answer.text and "acknowledged with a comment" in answer.text
    db.session.expire_all()
    alarm = db.session.get(Alarm, alarm_id)
    assert alarm is not None and alarm.acknowledged_at is None


def test_guard_acknowledges_and_manager_resolves(client: FlaskClient, world: dict[str, Any]) -> None:
    alarm_id = raise_alarm(world)
    login(client, "guard1")
    answer = act(client, alarm_id, "acknowledge", "Checked the gate: a delivery, door closed.")
    assert answer.status_code == 302
    db.session.expire_all()
    alarm = db.session.get(Alarm, alarm_id)
    assert alarm is not None and alarm.acknowledged_by == "guard1"
    assert alarm.ack_comment == "Checked the gate: a delivery, door closed." and alarm.resolved_at is None
    page = client.get("/operations").text
    assert "Acknowledged" in page and "a delivery, door closed" in page
    assert act(client, alarm_id, "resolve", "done").status_code == 403  # guards do not resolve

    client.post("/logout", data={"csrf_token": csrf_token(page)})
    login(client, "manager1")
    assert act(client, alarm_id, "resolve", "Cause ended.").status_code == 302
    db.session.expire_all()
    alarm = db.session.get(Alarm, alarm_id)
    assert alarm is not None and alarm.resolved_at is not None and alarm.resolved_by == "manager1"
    assert f'data-alarm="{alarm_id}"' not in client.get("/operations").text
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(alarm_id))))
    assert {"alarm.acknowledge", "alarm.resolve"} <= actions
    # Resolving it twice is refused with a sentence, on the page.
    again = act(client, alarm_id, "resolve", "Again.")
    assert again.status_code == 409 and f'data-alarm-error="{alarm_id}"' in again.text


# ---- the stream ---------------------------------------------------------------------------------------------------


def sse(text: str) -> list[dict[str, str]]:
    """The events in a stream's text, each as its fields (comments left out)."""
    found = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "event" in fields:
            found.append(fields)
    return found


@pytest.fixture
def quick_stream(app: Flask) -> Iterator[None]:
    """Streams that poll often and end within a second (the real ones run five minutes)."""
    app.config[SETTINGS_KEY] = Settings(lifetime=0.6, poll=0.02, heartbeat=0.2)
    yield
    app.config.pop(SETTINGS_KEY, None)


def test_short_time_names_the_date_only_when_not_today() -> None:
    now = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    today = str(short_time(now, "Asia/Shanghai", now))
    assert ">12:00:00</time>" in today and 'datetime="2026-03-10T04:00:00+00:00"' in today
    assert ">2026-03-09 12:00</time>" in str(short_time(now - timedelta(days=1), "Asia/Shanghai", now))
    assert str(short_time(None, "UTC")) == "—"


def test_parse_after() -> None:
    assert parse_after("12", "3") == 12
    assert parse_after(None, "3") == 3
    assert parse_after("x", None) is None and parse_after(None, None) is None


def test_stream_sends_items_after_last_event_id_in_order(
    client: FlaskClient, world: dict[str, Any], quick_stream: None
) -> None:
    ids = store_events(world, *[("gate", world["resident"], Decision.GRANT)] * 5)
    alarm_id = raise_alarm(world)
    login(client, "guard1")
    answer = client.get("/operations/stream", headers={"Last-Event-ID": str(ids[1])})
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    assert answer.text.startswith("retry: ")
    got = sse(answer.text)
    assert [int(e["id"]) for e in got] == [*ids[2:], max(ids) + 1]
    assert [e["event"] for e in got] == ["access"] * 3 + ["alarm"]
    data = json.loads(got[0]["data"])
    assert f'data-feed="{ids[2]}"' in data["html"] and world["resident"] in data["html"]
    alarm = json.loads(got[-1]["data"])
    assert alarm["alarm"] == alarm_id and alarm["open"] and alarm["cue"] and "csrf_token" in alarm["html"]
    # ?after= (the page's first connection) is used when no Last-Event-ID is sent.
    assert [int(e["id"]) for e in sse(client.get(f"/operations/stream?after={ids[3]}").text)][:1] == [ids[4]]


def test_stream_only_watched_sites_and_doors(client: FlaskClient, world: dict[str, Any], quick_stream: None) -> None:
    gate, side, lobby = store_events(
        world, ("gate", None, Decision.GRANT), ("side", None, Decision.GRANT), ("lobby", None, Decision.GRANT)
    )
    login(client, "guard1")
    south = sse(client.get(f"/operations/stream?after=0&site={world['south']}").text)
    assert [int(e["id"]) for e in south] == [lobby]
    grouped = client.get(f"/operations/stream?after=0&group={world['group']}").text
    assert [int(e["id"]) for e in sse(grouped)] == [gate]
    # The side door's event, left out, still moves the browser's position (an id line without an event).
    assert f"id: {side}\n\n" in grouped


def test_stream_delivers_items_stored_while_it_runs(
    client: FlaskClient, world: dict[str, Any], quick_stream: None
) -> None:
    login(client, "guard1")
    answer = client.get("/operations/stream", buffered=False)
    chunks: Iterator[bytes] = iter(answer.response)  # type: ignore[arg-type]
    first = next(chunks).decode()
    assert first.startswith("retry: ")
    ids = store_events(world, ("gate", world["staff"], Decision.GRANT), ("lobby", None, Decision.DENY))
    db.session.add(DoorLiveState(door_id=world["side"], state=DoorState.HELD_OPEN, since=AT, supervised=True))
    feed.record(db.session, [feed.NewItem(FeedKind.DOOR, "door.state", world["side"], world["north"], {})])
    db.session.commit()
    rest = "".join(chunk.decode() for chunk in chunks)  # the stream ends by itself after its short lifetime
    answer.close()
    got = sse(rest)
    assert [int(e["id"]) for e in got][:2] == ids
    assert "Zhao Guard" in json.loads(got[0]["data"])["html"]
    door = json.loads(got[2]["data"])
    assert got[2]["event"] == "door" and door["door"] == world["side"] and door["cue"] is True
    assert 'data-state="held_open"' in door["html"]


def test_streamed_rows_are_escaped(client: FlaskClient, world: dict[str, Any], quick_stream: None) -> None:
    door = db.session.get(Door, world["gate"])
    assert door is not None
    door.name = "<script>alert(1)</script>"
    db.session.commit()
    (item,) = store_events(world, ("gate", None, Decision.GRANT))
    login(client, "guard1")
    (event,) = sse(client.get(f"/operations/stream?after={item - 1}").text)
    html = json.loads(event["data"])["html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_stream_ends_when_the_login_ends(client: FlaskClient, world: dict[str, Any], app: Flask) -> None:
    app.config[SETTINGS_KEY] = Settings(lifetime=30, poll=0.01, heartbeat=0.05)
    try:
        login(client, "guard1")
        answer = client.get("/operations/stream", buffered=False)
        chunks: Iterator[bytes] = iter(answer.response)  # type: ignore[arg-type]
        next(chunks)
        for row in db.session.scalars(select(ConsoleSession)):
            db.session.delete(row)
        db.session.commit()
        rest = "".join(chunk.decode() for chunk in chunks)  # ends at the next heartbeat, not after 30 s
        answer.close()
        assert rest.count(": heartbeat") <= 1
    finally:
        app.config.pop(SETTINGS_KEY, None)


def test_the_board_marks_a_door_under_lockdown_until_it_is_lifted(client: FlaskClient, world: dict[str, Any]) -> None:
    from server.services.access import door_modes

    batch = door_modes.start_lockdown(
        db.session, TEST_ACTOR, site_id=world["north"], door_ids=[world["gate"]], reason="Intruder"
    )
    db.session.commit()
    login(client, "guard1")

    def row(door: str) -> str:
        html = client.get("/operations").text
        found = re.search(f'<tr data-door="{world[door]}".*?</tr>', html, re.S)
        assert found, door
        return found.group(0)

    assert "Lockdown" in row("gate") and "Lockdown" not in row("side")
    door_modes.lift(db.session, TEST_ACTOR, batch, "All clear")
    db.session.commit()
    assert "Lockdown" not in row("gate")
