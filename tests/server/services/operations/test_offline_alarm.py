"""A terminal silent past its site's bound raises one alarm per outage, ended when it is back online."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from server.extensions import db
from server.models import Alarm, AlarmKind, AlarmSeverity, TerminalStatus, utcnow
from server.services.operations import alarms, offline
from server.services.terminals import terminals
from tests.server.services.operations.conftest import Doors, feed_topics


def went_offline(doors: Doors, at: datetime) -> None:
    terminals.record_status(db.session, doors.site.code, doors.north.ident, online=False, at=at)
    db.session.commit()


def check(at: datetime) -> int:
    raised = offline.check_offline(db.session, at)
    db.session.commit()
    return raised


def offline_alarms() -> list[Alarm]:
    db.session.expire_all()
    return list(db.session.scalars(select(Alarm).where(Alarm.kind == AlarmKind.TERMINAL_OFFLINE).order_by(Alarm.id)))


def test_raised_once_after_the_sites_bound_and_resolved_when_back(doors: Doors) -> None:
    t0 = utcnow() - timedelta(hours=1)
    went_offline(doors, t0)
    bound = timedelta(minutes=doors.site.offline_alarm_minutes)
    assert check(t0 + bound - timedelta(seconds=1)) == 0
    assert check(t0 + bound) == 1
    assert check(t0 + bound + timedelta(minutes=30)) == 0  # the same outage
    # A restarted worker re-reads the retained "offline", which moves last_seen_at on: still the same outage.
    went_offline(doors, t0 + bound)
    assert check(t0 + 3 * bound) == 0
    (alarm,) = offline_alarms()
    assert alarm.severity is AlarmSeverity.WARNING and alarm.terminal_id == doors.north.id
    assert alarm.ref == f"{doors.north.id}@{t0.isoformat(timespec='seconds')}"
    assert "North" in alarm.message and f"{doors.site.offline_alarm_minutes} minutes" in alarm.message

    # Back online: its status message ends the alarm (the worker calls terminal_seen).
    terminal = terminals.record_status(db.session, doors.site.code, doors.north.ident, online=True)
    assert offline.terminal_seen(db.session, terminal) == 1
    db.session.commit()
    (alarm,) = offline_alarms()
    assert alarm.resolved_by == "system" and alarm.resolve_comment == offline.BACK_ONLINE
    assert [t for t, _ in feed_topics()] == ["alarm.raised", "alarm.resolved"]

    # A later outage is an alarm of its own.
    t1 = utcnow()
    went_offline(doors, t1)
    assert check(t1 + bound) == 1
    assert [a.resolved_at is None for a in offline_alarms()] == [False, True]


def test_the_sites_bound_is_honoured_and_online_or_never_seen_terminals_are_not_alarmed(doors: Doors) -> None:
    doors.site.offline_alarm_minutes = 60
    t0 = utcnow()
    went_offline(doors, t0)
    assert doors.south.status is TerminalStatus.UNKNOWN and doors.south.last_seen_at is None  # never installed
    assert check(t0 + timedelta(minutes=59)) == 0
    assert check(t0 + timedelta(minutes=61)) == 1
    assert {a.terminal_id for a in offline_alarms()} == {doors.north.id}


def test_the_check_resolves_alarms_of_terminals_back_online_or_removed(doors: Doors) -> None:
    t0 = utcnow() - timedelta(hours=2)
    went_offline(doors, t0)
    terminals.record_status(db.session, doors.site.code, doors.south.ident, online=False, at=t0)
    db.session.commit()
    assert check(t0 + timedelta(hours=1)) == 2
    terminals.record_status(db.session, doors.site.code, doors.north.ident, online=True)
    db.session.delete(doors.south)
    db.session.commit()
    assert check(t0 + timedelta(hours=1, minutes=1)) == 0
    assert [a.resolved_by for a in offline_alarms()] == ["system", "system"]
    assert alarms.open_alarms(db.session) == []
