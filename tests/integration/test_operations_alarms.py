"""Alarms end to end: a real terminal process with a simulated door contact, the worker and a real, secured
mosquitto. A door forced open reaches the alarms table as an open, critical alarm and the door board as
forced_open; closing the door ends the alarm by itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import Alarm, AlarmKind, AlarmSeverity, DoorLiveState
from server.services.operations import door_states
from tests.integration.sync_rig import TerminalHandle, wait_for
from tests.integration.test_door_supervision import door, estate, supervised  # noqa: F401 - the fixtures

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def door_alarms(door_id: int) -> list[Alarm]:
    db.session.expire_all()
    found = list(db.session.scalars(select(Alarm).where(Alarm.door_id == door_id).order_by(Alarm.id)))
    db.session.rollback()
    return found


def live_state(door_id: int) -> str | None:
    db.session.expire_all()
    row = db.session.get(DoorLiveState, door_id)
    state = row.state.value if row is not None else None
    db.session.rollback()
    return state


@sqlite_only
def test_a_forced_door_raises_an_alarm_that_ends_when_the_door_closes(
    supervised: tuple[TerminalHandle, Path],  # noqa: F811
    estate: dict[str, Any],  # noqa: F811
) -> None:
    _handle, socket_path = supervised
    side = estate["side"].id
    # The worker takes the retained door states as it connects.
    wait_for(lambda: live_state(side) == "locked", what="the door's live state on the server")

    assert door(socket_path, side, "open") == "forced_open"
    wait_for(lambda: len(door_alarms(side)) == 1, what="the forced-open alarm in the alarms table")
    (alarm,) = door_alarms(side)
    assert (alarm.kind, alarm.severity, alarm.resolved_at) == (AlarmKind.DOOR_FORCED, AlarmSeverity.CRITICAL, None)
    wait_for(lambda: live_state(side) == "forced_open", what="forced_open on the door board")
    lines = {line.door_id: line for line in door_states.board(db.session)}
    db.session.rollback()
    assert lines[side].state == "forced_open" and lines[side].online

    assert door(socket_path, side, "close") == "locked"
    wait_for(lambda: door_alarms(side)[0].resolved_at is not None, what="the alarm ended by the door closing")
    (alarm,) = door_alarms(side)
    assert alarm.resolved_by == "system" and live_state(side) == "locked"
