"""Alarms of every kind, through one service: raised once, acknowledged with a comment, resolved.

Every surface (the console, the integration API, the command line, the worker) raises and handles alarms here,
so each alarm gets its kind's severity, each step writes its feed item (alarm.raised, alarm.acknowledged,
alarm.resolved) in the same transaction, and each person's step is audited. An alarm is unique per kind and ref
(an event's uid, an erasure receipt's id, a terminal and when it was last seen): raising it again is a no-op,
so a redelivered event or a second worker never raises twice. The system resolves an alarm when its cause ends
(`resolve_cause`: the door closed, the terminal is back); a manager can end one by hand (`resolve`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Select, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from server.models import Alarm, AlarmKind, AlarmSeverity, Door, FeedKind, Terminal, utcnow
from server.services import audit
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.operations import feed
from server.services.session import DbSession

# How urgently a guard must act on each kind.
SEVERITY: dict[AlarmKind, AlarmSeverity] = {
    AlarmKind.DOOR_FORCED: AlarmSeverity.CRITICAL,
    AlarmKind.TERMINAL_TAMPER: AlarmSeverity.CRITICAL,
    AlarmKind.DOOR_HELD_OPEN: AlarmSeverity.WARNING,
    AlarmKind.KEYPAD_LOCKOUT: AlarmSeverity.WARNING,
    AlarmKind.TERMINAL_OFFLINE: AlarmSeverity.WARNING,
    AlarmKind.CLOCK_SKEW: AlarmSeverity.WARNING,
    AlarmKind.SYNC_DIVERGENCE: AlarmSeverity.WARNING,
    AlarmKind.SNAPSHOT_BUDGET: AlarmSeverity.WARNING,
    AlarmKind.TERMINAL_ALARM: AlarmSeverity.WARNING,
    AlarmKind.ERASURE_OVERDUE: AlarmSeverity.NOTICE,
    AlarmKind.FACE_COUNT: AlarmSeverity.NOTICE,
}
# Most urgent first, for lists and counts.
SEVERITY_ORDER = (AlarmSeverity.CRITICAL, AlarmSeverity.WARNING, AlarmSeverity.NOTICE)
# Alarms a terminal raises about a door or itself (the rest the server raises about its own records).
TERMINAL_KINDS = frozenset(
    {
        AlarmKind.DOOR_FORCED,
        AlarmKind.DOOR_HELD_OPEN,
        AlarmKind.KEYPAD_LOCKOUT,
        AlarmKind.TERMINAL_OFFLINE,
        AlarmKind.TERMINAL_TAMPER,
        AlarmKind.CLOCK_SKEW,
        AlarmKind.SYNC_DIVERGENCE,
        AlarmKind.TERMINAL_ALARM,
    }
)
# A keypad lockout lasts at most an hour (terminals/lockout.py, LockoutPolicy.cap_s): its alarm ends by then.
LOCKOUT_OVER = timedelta(hours=1)
COMMENT_MAX = 500  # characters of a guard's or manager's comment, as the audit log keeps it
# Who resolves an alarm whose cause ended.
SYSTEM = "system"
# A terminal's alarm event's reason (terminals/door_state.py, terminals/decision.py) and the kind it raises; any
# other reason raises TERMINAL_ALARM, with the reason in its message.
EVENT_KINDS: dict[str, AlarmKind] = {
    "door_forced": AlarmKind.DOOR_FORCED,
    "door_held_open": AlarmKind.DOOR_HELD_OPEN,
    "brute_force": AlarmKind.KEYPAD_LOCKOUT,
    "tamper": AlarmKind.TERMINAL_TAMPER,
}


@dataclass(frozen=True)
class NewAlarm:
    """An alarm to raise (unless one of the same kind and ref exists)."""

    kind: AlarmKind
    ref: str
    site_id: int | None
    message: str
    severity: AlarmSeverity | None = None
    door_id: int | None = None
    terminal_id: int | None = None
    at: datetime | None = None


def raise_alarm(
    session: DbSession,
    kind: AlarmKind,
    ref: str,
    *,
    site_id: int | None,
    message: str,
    severity: AlarmSeverity | None = None,
    door_id: int | None = None,
    terminal_id: int | None = None,
    at: datetime | None = None,
) -> Alarm | None:
    """Raise one alarm with its feed item; None when one of this kind and ref exists already. No commit."""
    raised = raise_alarms(session, [NewAlarm(kind, ref, site_id, message, severity, door_id, terminal_id, at)])
    return raised[0] if raised else None


def raise_alarms(session: DbSession, alarms: Sequence[NewAlarm]) -> list[Alarm]:
    """Raise those of `alarms` not raised before (unique kind and ref), in one statement; the new ones, with their
    feed items. Another process may race us: the database keeps the first. No commit."""
    # One of each kind and ref: the database keeps the first, so keep it here too.
    alarms = list({(new.kind, new.ref): new for new in reversed(alarms)}.values())[::-1]
    if not alarms:
        return []
    now = utcnow()
    rows = [
        {
            "kind": new.kind,
            "ref": new.ref,
            "site_id": new.site_id,
            "message": new.message,
            "severity": new.severity or SEVERITY[new.kind],
            "door_id": new.door_id,
            "terminal_id": new.terminal_id,
            "raised_at": new.at or now,
        }
        for new in alarms
    ]
    stmt: Insert
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(Alarm).on_conflict_do_nothing(index_elements=["kind", "ref"])
    else:
        stmt = sqlite.insert(Alarm).on_conflict_do_nothing(index_elements=["kind", "ref"])
    ids = list(session.scalars(stmt.returning(Alarm.id), rows))
    if not ids:
        return []
    raised = list(session.scalars(select(Alarm).where(Alarm.id.in_(ids)).order_by(Alarm.id)))
    feed.record(session, [_item(alarm, "alarm.raised") for alarm in raised])
    return raised


def raise_from_events(session: DbSession, events: Iterable[Any]) -> list[Alarm]:
    """Raise the alarm of each terminal alarm event among `events` (rows with the AccessEvent columns event_uid,
    site_id, door_id, terminal_id, decision, reason, occurred_at), once per event uid. No commit."""
    rows = [row for row in events if str(row.decision) == "alarm"]
    if not rows:
        return []
    doors = dict(session.execute(select(Door.id, Door.name).where(Door.id.in_({r.door_id for r in rows}))).all())
    names = dict(
        session.execute(select(Terminal.id, Terminal.name).where(Terminal.id.in_({r.terminal_id for r in rows}))).all()
    )
    return raise_alarms(
        session,
        [
            NewAlarm(
                kind=EVENT_KINDS.get(row.reason, AlarmKind.TERMINAL_ALARM),
                ref=row.event_uid,
                site_id=row.site_id,
                message=_event_message(row.reason, doors.get(row.door_id), names.get(row.terminal_id)),
                door_id=row.door_id,
                terminal_id=row.terminal_id,
                at=row.occurred_at,
            )
            for row in rows
        ],
    )


def _event_message(reason: str, door: str | None, terminal: str | None) -> str:
    """What a terminal's alarm means and what to do, naming the door and terminal (never a person)."""
    door = door or "a door"
    terminal = terminal or "a terminal"
    if reason == "door_forced":
        return f"Door {door} was opened without a grant or exit request ({terminal}). Check the door now."
    if reason == "door_held_open":
        return f"Door {door} is held open past its limit ({terminal}). Have it closed."
    if reason == "brute_force":
        return (
            f"Typed entry at {terminal} (door {door}) locked after repeated wrong codes: someone may be guessing. "
            "Check who is at the door."
        )
    if reason == "tamper":
        return f"Terminal {terminal} (door {door}) reported tampering. Check the terminal and its reader."
    return f"Terminal {terminal} (door {door}) raised an alarm: {reason}."


def get_alarm(session: DbSession, alarm_id: int, site_ids: Iterable[int] | None = None) -> Alarm:
    """One alarm (of `site_ids` or server-wide, when given), locked for the caller's change; NotFound otherwise."""
    stmt = select(Alarm).where(Alarm.id == alarm_id)
    if site_ids is not None:
        stmt = stmt.where(or_(Alarm.site_id.in_(list(site_ids)), Alarm.site_id.is_(None)))
    alarm = session.scalar(stmt.with_for_update())
    if alarm is None:
        raise NotFound(f"There is no alarm {alarm_id}.")
    return alarm


def acknowledge(
    session: DbSession, actor: Actor, alarm_id: int, comment: str, *, site_ids: Iterable[int] | None = None
) -> Alarm:
    """A guard has seen the alarm and says what they are doing about it; audited. No commit."""
    comment = _comment(comment)
    alarm = get_alarm(session, alarm_id, site_ids)
    if alarm.resolved_at is not None:
        raise Conflict("This alarm has already been resolved.", code="alarm_resolved")
    if alarm.acknowledged_at is not None:
        raise Conflict(f"This alarm was already acknowledged by {alarm.acknowledged_by}.", code="alarm_acknowledged")
    alarm.acknowledged_at = utcnow()
    alarm.acknowledged_by = actor.label
    alarm.ack_comment = comment
    audit.record(
        session,
        actor,
        "alarm.acknowledge",
        "alarm",
        alarm.id,
        site_id=alarm.site_id,
        details={"kind": alarm.kind.value, "comment": comment},
    )
    feed.record(session, [_item(alarm, "alarm.acknowledged")])
    return alarm


def resolve(
    session: DbSession, actor: Actor, alarm_id: int, comment: str, *, site_ids: Iterable[int] | None = None
) -> Alarm:
    """A manager ends the alarm by hand, saying why; audited. No commit."""
    comment = _comment(comment)
    alarm = get_alarm(session, alarm_id, site_ids)
    if alarm.resolved_at is not None:
        raise Conflict("This alarm has already been resolved.", code="alarm_resolved")
    alarm.resolved_at = utcnow()
    alarm.resolved_by = actor.label
    alarm.resolve_comment = comment
    audit.record(
        session,
        actor,
        "alarm.resolve",
        "alarm",
        alarm.id,
        site_id=alarm.site_id,
        details={"kind": alarm.kind.value, "comment": comment},
    )
    feed.record(session, [_item(alarm, "alarm.resolved")])
    return alarm


def resolve_cause(
    session: DbSession,
    kind: AlarmKind,
    *,
    site_id: int | None = None,
    door_id: int | None = None,
    terminal_id: int | None = None,
    refs: Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
    raised_before: datetime | None = None,
    at: datetime | None = None,
    comment: str | None = None,
) -> int:
    """Resolve the open alarms of `kind` (of a site, door, terminal, refs or ids, raised at or before
    `raised_before`, when given) whose cause ended: resolved by "system", one feed item each; how many. No commit."""
    stmt = select(Alarm).where(Alarm.kind == kind, Alarm.resolved_at.is_(None))
    if raised_before is not None:
        stmt = stmt.where(Alarm.raised_at <= raised_before)
    if site_id is not None:
        stmt = stmt.where(Alarm.site_id == site_id)
    if door_id is not None:
        stmt = stmt.where(Alarm.door_id == door_id)
    if terminal_id is not None:
        stmt = stmt.where(Alarm.terminal_id == terminal_id)
    if refs is not None:
        refs = list(refs)
        if not refs:
            return 0
        stmt = stmt.where(Alarm.ref.in_(refs))
    if ids is not None:
        ids = list(ids)
        if not ids:
            return 0
        stmt = stmt.where(Alarm.id.in_(ids))
    ended = list(session.scalars(stmt.order_by(Alarm.id).with_for_update()))
    at = at or utcnow()
    for alarm in ended:
        alarm.resolved_at = at
        alarm.resolved_by = SYSTEM
        alarm.resolve_comment = comment
    feed.record(session, [_item(alarm, "alarm.resolved") for alarm in ended])
    return len(ended)


def end_lockouts(session: DbSession, at: datetime | None = None) -> int:
    """Resolve keypad-lockout alarms raised over LOCKOUT_OVER ago (the lockout is over); how many. No commit."""
    at = at or utcnow()
    return resolve_cause(
        session,
        AlarmKind.KEYPAD_LOCKOUT,
        raised_before=at - LOCKOUT_OVER,
        at=at,
        comment="The keypad lockout is over.",
    )


def open_alarms(
    session: DbSession,
    site_ids: Iterable[int] | None = None,
    limit: int | None = None,
    *,
    kinds: Iterable[AlarmKind] | None = None,
) -> list[Alarm]:
    """Unresolved alarms, newest first: all, or those of `site_ids` with the server-wide ones; at most `limit`."""
    stmt = _of(select(Alarm).where(Alarm.resolved_at.is_(None)), site_ids, kinds)
    return list(session.scalars(stmt.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit)))


def recent_alarms(
    session: DbSession,
    since: datetime,
    site_ids: Iterable[int] | None = None,
    limit: int | None = None,
    *,
    kinds: Iterable[AlarmKind] | None = None,
) -> list[Alarm]:
    """Alarms resolved since `since`, most recently resolved first (what a guard may have missed)."""
    stmt = _of(select(Alarm).where(Alarm.resolved_at >= since), site_ids, kinds)
    return list(session.scalars(stmt.order_by(Alarm.resolved_at.desc(), Alarm.id.desc()).limit(limit)))


def alarm_payload(alarm: Alarm) -> dict[str, Any]:
    """An alarm as the feed, the integration API and webhooks show it: nothing biometric, no card or ID value."""
    return {
        "id": alarm.id,
        "kind": alarm.kind.value,
        "severity": alarm.severity.value,
        "site_id": alarm.site_id,
        "door_id": alarm.door_id,
        "terminal_id": alarm.terminal_id,
        "message": alarm.message,
        "raised_at": alarm.raised_at,
        "acknowledged_at": alarm.acknowledged_at,
        "acknowledged_by": alarm.acknowledged_by,
        "ack_comment": alarm.ack_comment,
        "resolved_at": alarm.resolved_at,
        "resolved_by": alarm.resolved_by,
        "resolve_comment": alarm.resolve_comment,
    }


def _of(stmt: Select[Alarm], site_ids: Iterable[int] | None, kinds: Iterable[AlarmKind] | None) -> Select[Alarm]:
    if site_ids is not None:
        stmt = stmt.where(or_(Alarm.site_id.in_(list(site_ids)), Alarm.site_id.is_(None)))
    if kinds is not None:
        stmt = stmt.where(Alarm.kind.in_(list(kinds)))
    return stmt


def _comment(comment: str) -> str:
    comment = (comment or "").strip()
    if not comment:
        raise RuleViolation("Say what was done about the alarm.", code="comment_required")
    if len(comment) > COMMENT_MAX:
        raise RuleViolation(f"Keep the comment under {COMMENT_MAX} characters.", code="comment_too_long")
    return comment


def _item(alarm: Alarm, topic: str) -> feed.NewItem:
    return feed.NewItem(FeedKind.ALARM, topic, alarm.id, alarm.site_id, alarm_payload(alarm))
