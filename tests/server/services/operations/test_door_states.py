"""Doors' live state from their terminals: changes fed, closing ends the door's alarms, others' doors ignored."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from gatehouse_core.wire.messages import DoorState, DoorStates, DoorStatus
from server.extensions import db
from server.models import Alarm, AlarmKind, DoorLiveState, TerminalStatus, utcnow
from server.services.operations import alarms, door_states, feed
from server.services.terminals import terminals
from tests.server.services.operations.conftest import Doors, alarm_event, deliver, feed_topics


def publish(doors: Doors, *states: tuple[int, DoorState, datetime], terminal=None) -> list[int]:  # type: ignore[no-untyped-def]
    """Apply a terminal's door states message (North's by default), and commit."""
    terminal = terminal or doors.north
    message = DoorStates(
        terminal=terminal.ident,
        doors=tuple(DoorStatus(door=d, state=s, supervised=True, since=since) for d, s, since in states),
        at=utcnow(),
    )
    changed = door_states.apply(db.session, terminal, message)
    db.session.commit()
    return changed


def live(door_id: int) -> DoorLiveState | None:
    db.session.expire_all()
    return db.session.get(DoorLiveState, door_id)


def test_a_change_is_recorded_and_fed_a_repeat_is_not(doors: Doors) -> None:
    t0 = utcnow()
    assert publish(doors, (doors.gate.id, DoorState.LOCKED, t0)) == [doors.gate.id]
    assert publish(doors, (doors.gate.id, DoorState.LOCKED, t0)) == []  # republished on reconnect
    assert publish(doors, (doors.gate.id, DoorState.OPEN, t0 + timedelta(seconds=2))) == [doors.gate.id]
    row = live(doors.gate.id)
    assert row is not None and (row.state, row.terminal_id, row.supervised) == (DoorState.OPEN, doors.north.id, True)
    assert feed_topics() == [("door.state", doors.gate.id)] * 2
    payload = feed.payload(feed.items_after(db.session, 0, topics=["door.state"])[-1])
    assert payload["state"] == "open" and payload["door_id"] == doors.gate.id
    assert payload["site_id"] == doors.site.id and payload["terminal_id"] == doors.north.id


def test_an_older_state_does_not_replace_a_newer_one(doors: Doors) -> None:
    t0 = utcnow()
    publish(doors, (doors.gate.id, DoorState.OPEN, t0))
    assert publish(doors, (doors.gate.id, DoorState.LOCKED, t0 - timedelta(seconds=5))) == []
    row = live(doors.gate.id)
    assert row is not None and row.state is DoorState.OPEN


def test_a_door_the_terminal_does_not_serve_is_ignored(doors: Doors, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="server.services.operations.door_states"):
        changed = publish(doors, (doors.back.id, DoorState.FORCED_OPEN, utcnow()), (999_999, DoorState.OPEN, utcnow()))
    assert changed == []
    assert live(doors.back.id) is None and feed_topics() == []
    assert any("does not serve" in r.getMessage() for r in caplog.records)


def test_closing_the_door_resolves_its_forced_and_held_alarms_only(doors: Doors) -> None:
    t0 = utcnow()
    forced, held = alarm_event(doors.gate, "door_forced", t0), alarm_event(doors.gate, "door_held_open", t0)
    elsewhere = alarm_event(doors.back, "door_forced", t0)
    lockout = alarm_event(doors.gate, "brute_force", t0)
    deliver(doors.north, forced, held, lockout)
    deliver(doors.south, elsewhere)
    publish(doors, (doors.gate.id, DoorState.FORCED_OPEN, t0))
    assert len(alarms.open_alarms(db.session)) == 4  # still open: forced_open is not closed
    start = feed.latest_id(db.session)
    publish(doors, (doors.gate.id, DoorState.LOCKED, t0 + timedelta(seconds=30)))
    by_ref = {a.ref: a for a in db.session.scalars(select(Alarm))}
    for ended in (forced, held):
        assert by_ref[ended.uid].resolved_by == "system" and by_ref[ended.uid].resolve_comment
    assert by_ref[elsewhere.uid].resolved_at is None and by_ref[lockout.uid].resolved_at is None
    assert sorted(feed_topics(start)) == sorted(
        [
            ("door.state", doors.gate.id),
            ("alarm.resolved", by_ref[forced.uid].id),
            ("alarm.resolved", by_ref[held.uid].id),
        ]
    )


def test_a_forced_alarm_delivered_after_the_door_closed_is_raised_and_resolved(doors: Doors) -> None:
    t0 = utcnow()
    publish(doors, (doors.gate.id, DoorState.LOCKED, t0 + timedelta(seconds=30)))
    forced = alarm_event(doors.gate, "door_forced", t0)
    deliver(doors.north, forced)
    (alarm,) = db.session.scalars(select(Alarm))
    assert alarm.kind is AlarmKind.DOOR_FORCED and alarm.resolved_by == "system"
    assert [t for t, _ in feed_topics() if t.startswith("alarm.")] == ["alarm.raised", "alarm.resolved"]
    # A later forcing is not ended by the earlier close.
    deliver(doors.north, alarm_event(doors.gate, "door_forced", t0 + timedelta(minutes=1)))
    assert len(alarms.open_alarms(db.session)) == 1


def test_the_board_lists_every_door_with_state_and_terminal_link(doors: Doors) -> None:
    terminals.record_status(db.session, doors.site.code, doors.north.ident, online=True)
    db.session.commit()
    t0 = utcnow()
    publish(doors, (doors.gate.id, DoorState.HELD_OPEN, t0))
    lines = {line.door: line for line in door_states.board(db.session)}
    assert set(lines) == {"Gate", "Back"}
    gate, back = lines["Gate"], lines["Back"]
    assert (gate.state, gate.since, gate.supervised, gate.online) == ("held_open", t0, True, True)
    assert [(t.name, t.status) for t in gate.terminals] == [("North", TerminalStatus.ONLINE)]
    assert (back.state, back.since, back.supervised, back.online) == (door_states.UNKNOWN, None, False, False)
    assert door_states.board(db.session, site_ids=[doors.site.id + 1]) == []
    assert door_states.door_payload(gate)["terminals"] == [{"id": doors.north.id, "name": "North", "status": "online"}]
