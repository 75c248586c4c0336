"""The worker routes doors' states to the door board and ends a terminal's offline alarm when it is back."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import DoorState, DoorStates, DoorStatus
from gatehouse_core.wire.topics import STATUS_ONLINE, Channel, terminal_topic
from server.extensions import db
from server.link.worker import Worker
from server.models import Alarm, AlarmKind, DoorLiveState, utcnow
from server.services.operations import offline
from server.services.terminals import terminals
from tests.server.services.operations.conftest import Doors
from tests.server.services.operations.conftest import doors as doors  # the fixture, re-exported for pytest


def states(doors: Doors, terminal_ident: str, state: DoorState) -> bytes:
    status = DoorStatus(door=doors.gate.id, state=state, supervised=True, since=utcnow())
    return encode(DoorStates(terminal=terminal_ident, doors=(status,), at=utcnow()))


def test_door_states_reach_the_board_and_a_mismatched_terminal_is_dropped(app: Flask, doors: Doors) -> None:
    worker = Worker(app)
    topic = terminal_topic(doors.site.code, doors.north.ident, Channel.DOORS)
    worker.dispatch(topic, states(doors, doors.south.ident, DoorState.OPEN))  # names another terminal
    worker.dispatch(topic, b"not json")
    assert db.session.get(DoorLiveState, doors.gate.id) is None
    worker.dispatch(topic, states(doors, doors.north.ident, DoorState.FORCED_OPEN))
    db.session.expire_all()
    row = db.session.get(DoorLiveState, doors.gate.id)
    assert row is not None and row.state is DoorState.FORCED_OPEN


def test_an_online_status_ends_the_terminals_offline_alarm(app: Flask, doors: Doors) -> None:
    t0 = utcnow() - timedelta(hours=1)
    terminals.record_status(db.session, doors.site.code, doors.north.ident, online=False, at=t0)
    db.session.commit()
    assert offline.check_offline(db.session) == 1
    db.session.commit()
    Worker(app).dispatch(terminal_topic(doors.site.code, doors.north.ident, Channel.STATUS), STATUS_ONLINE)
    db.session.expire_all()
    (alarm,) = db.session.scalars(select(Alarm).where(Alarm.kind == AlarmKind.TERMINAL_OFFLINE))
    assert alarm.resolved_by == "system"
