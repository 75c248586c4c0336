"""The one alarm service: raised once with its kind's severity, acknowledged with a comment, resolved; each step
fed and each person's step audited (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Alarm, AlarmKind, AlarmSeverity, utcnow
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.operations import alarms, feed
from tests.server.services.operations.conftest import (
    Doors,
    alarm_event,
    audit_actions,
    deliver,
    feed_topics,
)

GUARD = Actor("guard1")
MANAGER = Actor("manager1")


def raise_forced(doors: Doors, ref: str = "e-1") -> Alarm | None:
    alarm = alarms.raise_alarm(
        db.session,
        AlarmKind.DOOR_FORCED,
        ref,
        site_id=doors.site.id,
        message="Gate forced",
        door_id=doors.gate.id,
        terminal_id=doors.north.id,
    )
    db.session.commit()
    return alarm


def test_raised_once_with_its_kinds_severity_and_a_feed_item(doors: Doors) -> None:
    start = feed.latest_id(db.session)
    alarm = raise_forced(doors)
    assert alarm is not None and alarm.severity is AlarmSeverity.CRITICAL
    assert raise_forced(doors) is None  # the same kind and ref: already raised
    assert db.session.scalar(select(func.count()).select_from(Alarm)) == 1
    assert feed_topics(start) == [("alarm.raised", alarm.id)]
    payload = feed.payload(feed.items_after(db.session, start)[0])
    assert payload["kind"] == "door_forced" and payload["severity"] == "critical"
    assert (payload["door_id"], payload["terminal_id"], payload["site_id"]) == (
        doors.gate.id,
        doors.north.id,
        doors.site.id,
    )
    assert set(payload) == {
        "id", "kind", "severity", "site_id", "door_id", "terminal_id", "message", "raised_at", "acknowledged_at",
        "acknowledged_by", "ack_comment", "resolved_at", "resolved_by", "resolve_comment",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        (AlarmKind.TERMINAL_TAMPER, AlarmSeverity.CRITICAL),
        (AlarmKind.DOOR_HELD_OPEN, AlarmSeverity.WARNING),
        (AlarmKind.KEYPAD_LOCKOUT, AlarmSeverity.WARNING),
        (AlarmKind.TERMINAL_OFFLINE, AlarmSeverity.WARNING),
        (AlarmKind.ERASURE_OVERDUE, AlarmSeverity.NOTICE),
        (AlarmKind.FACE_COUNT, AlarmSeverity.NOTICE),
    ],
)
def test_severity_defaults_per_kind_and_can_be_given(doors: Doors, kind: AlarmKind, severity: AlarmSeverity) -> None:
    alarm = alarms.raise_alarm(db.session, kind, "x", site_id=doors.site.id, message="m")
    assert alarm is not None and alarm.severity is severity
    louder = alarms.raise_alarm(db.session, kind, "y", site_id=None, message="m", severity=AlarmSeverity.CRITICAL)
    assert louder is not None and louder.severity is AlarmSeverity.CRITICAL


@pytest.mark.parametrize("comment", ["", "   ", "x" * (alarms.COMMENT_MAX + 1)])
def test_acknowledging_needs_a_short_comment(doors: Doors, comment: str) -> None:
    alarm = raise_forced(doors)
    assert alarm is not None
    with pytest.raises(RuleViolation) as refused:
        alarms.acknowledge(db.session, GUARD, alarm.id, comment)
    assert refused.value.code in ("comment_required", "comment_too_long")
    db.session.rollback()
    assert db.session.get_one(Alarm, alarm.id).acknowledged_at is None


def test_acknowledge_then_resolve_each_step_audited_and_fed(doors: Doors) -> None:
    alarm = raise_forced(doors)
    assert alarm is not None
    alarms.acknowledge(db.session, GUARD, alarm.id, "  Went to the gate: a delivery.  ")
    db.session.commit()
    assert (alarm.acknowledged_by, alarm.ack_comment) == ("guard1", "Went to the gate: a delivery.")
    assert alarm.acknowledged_at is not None and alarm.resolved_at is None
    with pytest.raises(Conflict) as twice:
        alarms.acknowledge(db.session, GUARD, alarm.id, "again")
    assert twice.value.code == "alarm_acknowledged"
    db.session.rollback()

    alarms.resolve(db.session, MANAGER, alarm.id, "Lock repaired.")
    db.session.commit()
    assert (alarm.resolved_by, alarm.resolve_comment) == ("manager1", "Lock repaired.")
    for step in (alarms.acknowledge, alarms.resolve):
        with pytest.raises(Conflict) as late:
            step(db.session, GUARD, alarm.id, "too late")
        assert late.value.code == "alarm_resolved"
        db.session.rollback()

    assert feed_topics() == [
        ("alarm.raised", alarm.id),
        ("alarm.acknowledged", alarm.id),
        ("alarm.resolved", alarm.id),
    ]
    assert [a for a in audit_actions() if a[0].startswith("alarm.")] == [
        ("alarm.acknowledge", str(alarm.id)),
        ("alarm.resolve", str(alarm.id)),
    ]
    resolved = feed.payload(feed.items_after(db.session, 0, topics=["alarm.resolved"])[0])
    assert resolved["acknowledged_by"] == "guard1" and resolved["resolved_by"] == "manager1"


def test_an_unknown_alarm_or_another_sites_is_not_found(doors: Doors) -> None:
    alarm = raise_forced(doors)
    assert alarm is not None
    with pytest.raises(NotFound):
        alarms.acknowledge(db.session, GUARD, alarm.id + 100, "seen")
    with pytest.raises(NotFound):
        alarms.acknowledge(db.session, GUARD, alarm.id, "seen", site_ids=[doors.site.id + 1])


def test_resolve_cause_by_door_and_time_by_the_system(doors: Doors) -> None:
    now = utcnow()
    for ref, door, at in (("a", doors.gate, now), ("b", doors.back, now), ("c", doors.gate, now + timedelta(1))):
        alarms.raise_alarm(
            db.session, AlarmKind.DOOR_FORCED, ref, site_id=doors.site.id, message="m", door_id=door.id, at=at
        )
    start = feed.latest_id(db.session)
    ended = alarms.resolve_cause(
        db.session, AlarmKind.DOOR_FORCED, door_id=doors.gate.id, raised_before=now, comment="closed"
    )
    db.session.commit()
    assert ended == 1
    (resolved,) = [a for a in db.session.scalars(select(Alarm)) if a.resolved_at is not None]
    assert (resolved.ref, resolved.resolved_by, resolved.resolve_comment) == ("a", "system", "closed")
    assert feed_topics(start) == [("alarm.resolved", resolved.id)]
    assert {a.ref for a in alarms.open_alarms(db.session)} == {"b", "c"}
    assert alarms.resolve_cause(db.session, AlarmKind.DOOR_FORCED, refs=[]) == 0


def test_terminal_alarm_events_raise_alarms_once_however_often_delivered(doors: Doors) -> None:
    forced = alarm_event(doors.gate, "door_forced")
    held = alarm_event(doors.gate, "door_held_open")
    lockout = alarm_event(doors.gate, "brute_force")
    tamper = alarm_event(doors.gate, "tamper")
    odd = alarm_event(doors.gate, "reader_gone")
    deliver(doors.north, forced, held, lockout, tamper, odd)
    deliver(doors.north, forced, held, lockout, tamper, odd)  # redelivered: stored once, raised once
    raised = {a.ref: a for a in db.session.scalars(select(Alarm))}
    assert {ref: a.kind for ref, a in raised.items()} == {
        forced.uid: AlarmKind.DOOR_FORCED,
        held.uid: AlarmKind.DOOR_HELD_OPEN,
        lockout.uid: AlarmKind.KEYPAD_LOCKOUT,
        tamper.uid: AlarmKind.TERMINAL_TAMPER,
        odd.uid: AlarmKind.TERMINAL_ALARM,
    }
    alarm = raised[forced.uid]
    assert (alarm.site_id, alarm.door_id, alarm.terminal_id, alarm.raised_at) == (
        doors.site.id,
        doors.gate.id,
        doors.north.id,
        forced.at,
    )
    assert "Gate" in alarm.message and "North" in alarm.message
    assert "reader_gone" in raised[odd.uid].message
    assert len(feed.items_after(db.session, 0, topics=["alarm.raised"])) == 5


def test_keypad_lockouts_end_after_an_hour(doors: Doors) -> None:
    start = utcnow()
    deliver(doors.north, alarm_event(doors.gate, "brute_force", start))
    assert alarms.end_lockouts(db.session, start + timedelta(minutes=59)) == 0
    assert alarms.end_lockouts(db.session, start + timedelta(hours=1)) == 1
    db.session.commit()
    assert alarms.open_alarms(db.session) == []
    assert [a.kind for a in alarms.recent_alarms(db.session, start)] == [AlarmKind.KEYPAD_LOCKOUT]


def test_open_alarms_by_site_kind_and_limit(doors: Doors, make_site) -> None:  # type: ignore[no-untyped-def]
    other = make_site("elm")
    now = utcnow()
    alarms.raise_alarm(db.session, AlarmKind.DOOR_FORCED, "1", site_id=doors.site.id, message="m", at=now)
    alarms.raise_alarm(db.session, AlarmKind.DOOR_HELD_OPEN, "2", site_id=other.id, message="m", at=now)
    alarms.raise_alarm(db.session, AlarmKind.FACE_COUNT, "80%", site_id=None, message="m", at=now)
    db.session.commit()
    assert {a.ref for a in alarms.open_alarms(db.session, [doors.site.id])} == {"1", "80%"}
    assert [a.ref for a in alarms.open_alarms(db.session, kinds=[AlarmKind.DOOR_HELD_OPEN])] == ["2"]
    assert len(alarms.open_alarms(db.session, limit=2)) == 2
