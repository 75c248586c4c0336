"""Door modes: lockdown and emergency release of a door, a door group or a whole site, and unlock schedules.

An override is one row per door, the rows started together sharing a batch; it lasts until lifted. Each change is
journalled as the door's record (signed, versioned, persisted by the terminal and replayed to one that was
offline), so a terminal keeps the mode across restarts and power cuts; the publisher sends it at once, first in
its delta. On a door with two live overrides the one started last decides.

Who may do what (every step needs a reason and is audited with it):
- lockdown: admins, managers and guards (the guard on duty must be able to shut the doors now);
- emergency release: admins, managers and guards (a fire does not wait for a manager);
- lifting a lockdown: admins and managers (reopening after an intruder is a decision above the desk);
- lifting an emergency release: admins, managers and guards (relocking after the all-clear);
- unlock schedules: admins and managers.
Actors without a console account (the CLI, run by whoever administers the server) may do all of it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from server.models import (
    AccessGroup,
    ConsoleRole,
    ConsoleUser,
    Door,
    DoorOverride,
    DoorUnlockSchedule,
    JournalKind,
    OverrideMode,
    Site,
    access_group_doors,
    utcnow,
)
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import DomainError, NotFound, RuleViolation
from server.services.operations import door_states
from server.services.session import DbSession

MAX_REASON = 500
ALL_ROLES = frozenset({ConsoleRole.ADMIN, ConsoleRole.MANAGER, ConsoleRole.GUARD})
MANAGERS = frozenset({ConsoleRole.ADMIN, ConsoleRole.MANAGER})
START_ROLES = {OverrideMode.LOCKDOWN: ALL_ROLES, OverrideMode.EMERGENCY_RELEASE: ALL_ROLES}
LIFT_ROLES = {OverrideMode.LOCKDOWN: MANAGERS, OverrideMode.EMERGENCY_RELEASE: ALL_ROLES}


class Forbidden(DomainError):
    """The actor's role does not allow this."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True)
class LiveOverride:
    """A live override batch: its mode, site, doors and who started it why."""

    batch: str
    mode: OverrideMode
    site_id: int
    door_ids: tuple[int, ...]
    door_names: tuple[str, ...]
    reason: str
    started_at: datetime
    started_by: str


def _role_of(session: DbSession, actor: Actor) -> ConsoleRole | None:
    if actor.user_id is None:
        return None
    user = session.get(ConsoleUser, actor.user_id)
    if user is None or not user.active:
        raise Forbidden("This account may not change door modes.")
    return user.role


def _allow(session: DbSession, actor: Actor, roles: frozenset[ConsoleRole], what: str) -> None:
    if actor.user_id is None:
        return
    if _role_of(session, actor) not in roles:
        raise Forbidden(f"Your role does not allow you to {what}.")


def may_start(role: ConsoleRole, mode: OverrideMode) -> bool:
    """Whether a console role may start an override of this mode."""
    return role in START_ROLES[mode]


def may_lift(role: ConsoleRole, mode: OverrideMode) -> bool:
    """Whether a console role may lift an override of this mode."""
    return role in LIFT_ROLES[mode]


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation("Give a reason; it is kept in the audit log.", code="reason_missing")
    if len(reason) > MAX_REASON:
        raise RuleViolation(f"Keep the reason under {MAX_REASON} characters.", code="reason_too_long")
    return reason


def _doors(session: DbSession, site_id: int, door_ids: Sequence[int] | None, group_id: int | None) -> list[Door]:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound("No such site.")
    stmt = select(Door).where(Door.site_id == site_id)
    if door_ids is not None and group_id is not None:
        raise RuleViolation("Choose doors or a door group, not both.", code="bad_scope")
    if door_ids is not None:
        stmt = stmt.where(Door.id.in_(sorted(set(door_ids))))
    elif group_id is not None:
        group = session.get(AccessGroup, group_id)
        if group is None or group.site_id != site_id:
            raise NotFound("No such door group at this site.")
        stmt = stmt.join(access_group_doors, access_group_doors.c.door_id == Door.id).where(
            access_group_doors.c.group_id == group_id
        )
    doors = list(session.scalars(stmt.order_by(Door.id)))
    if not doors or (door_ids is not None and len(doors) != len(set(door_ids))):
        raise NotFound("No such door at this site.", code="no_door")
    return doors


def _journal_doors(session: DbSession, site_id: int, doors: Iterable[int], mode: str) -> None:
    wanted = sorted(set(doors))
    for door_id in wanted:
        journal.append(session, site_id, JournalKind.DOOR_POLICY, {"door": door_id, "mode": mode})
    # Live screens (the operations door board) redraw these doors with their mode at once.
    session.flush()
    door_states.feed_modes(session, site_id, wanted)


def _start(
    session: DbSession,
    actor: Actor,
    mode: OverrideMode,
    *,
    site_id: int,
    door_ids: Sequence[int] | None,
    group_id: int | None,
    reason: str,
) -> str:
    _allow(session, actor, START_ROLES[mode], f"start {mode.value.replace('_', ' ')}")
    reason = _reason(reason)
    doors = _doors(session, site_id, door_ids, group_id)
    batch = secrets.token_hex(8)
    now = utcnow()
    for door in doors:
        session.add(
            DoorOverride(
                batch=batch,
                site_id=site_id,
                door_id=door.id,
                mode=mode,
                reason=reason,
                started_at=now,
                started_by=actor.label,
            )
        )
    session.flush()
    _journal_doors(session, site_id, (d.id for d in doors), mode.value)
    scope = "doors" if door_ids is not None else "group" if group_id is not None else "site"
    audit.record(
        session,
        actor,
        f"door.{mode.value}",
        "door_override",
        batch,
        site_id=site_id,
        details={"reason": reason, "doors": [d.id for d in doors], "scope": scope, "group": group_id},
    )
    return batch


def start_lockdown(
    session: DbSession,
    actor: Actor,
    *,
    site_id: int,
    door_ids: Sequence[int] | None = None,
    group_id: int | None = None,
    reason: str,
) -> str:
    """Lock doors down (only staff credentials open); doors and group both None: the whole site. Returns the batch."""
    return _start(
        session, actor, OverrideMode.LOCKDOWN, site_id=site_id, door_ids=door_ids, group_id=group_id, reason=reason
    )


def start_emergency_release(
    session: DbSession,
    actor: Actor,
    *,
    site_id: int,
    door_ids: Sequence[int] | None = None,
    group_id: int | None = None,
    reason: str,
) -> str:
    """Hold doors unlocked for everyone (a fire); doors and group both None: the whole site. Returns the batch."""
    return _start(
        session,
        actor,
        OverrideMode.EMERGENCY_RELEASE,
        site_id=site_id,
        door_ids=door_ids,
        group_id=group_id,
        reason=reason,
    )


def lift(session: DbSession, actor: Actor, batch: str, reason: str) -> list[int]:
    """End a live override batch; returns the doors it covered."""
    rows = list(
        session.scalars(select(DoorOverride).where(DoorOverride.batch == batch, DoorOverride.lifted_at.is_(None)))
    )
    if not rows:
        raise NotFound("No live lockdown or emergency release with this id.", code="no_override")
    mode = rows[0].mode
    _allow(session, actor, LIFT_ROLES[mode], f"lift {mode.value.replace('_', ' ')}")
    reason = _reason(reason)
    now = utcnow()
    for row in rows:
        row.lifted_at, row.lifted_by, row.lift_reason = now, actor.label, reason
    session.flush()
    site_id = rows[0].site_id
    doors = sorted({r.door_id for r in rows})
    _journal_doors(session, site_id, doors, "lifted")
    audit.record(
        session,
        actor,
        f"door.{mode.value}.lift",
        "door_override",
        batch,
        site_id=site_id,
        details={"reason": reason, "doors": doors},
    )
    return doors


def live_overrides(session: DbSession, site_ids: Iterable[int] | None = None) -> list[LiveOverride]:
    """Live override batches, oldest first."""
    stmt = (
        select(DoorOverride, Door.name)
        .join(Door, Door.id == DoorOverride.door_id)
        .where(DoorOverride.lifted_at.is_(None))
        .order_by(DoorOverride.started_at, DoorOverride.id)
    )
    if site_ids is not None:
        stmt = stmt.where(DoorOverride.site_id.in_(sorted(set(site_ids))))
    batches: dict[str, list[tuple[DoorOverride, str]]] = {}
    for row, name in session.execute(stmt):
        batches.setdefault(row.batch, []).append((row, name))
    return [
        LiveOverride(
            batch=batch,
            mode=rows[0][0].mode,
            site_id=rows[0][0].site_id,
            door_ids=tuple(r.door_id for r, _ in rows),
            door_names=tuple(n for _, n in rows),
            reason=rows[0][0].reason,
            started_at=rows[0][0].started_at,
            started_by=rows[0][0].started_by,
        )
        for batch, rows in batches.items()
    ]


def door_mode(session: DbSession, door_id: int) -> OverrideMode | None:
    """The door's live override mode (the latest started), if any."""
    return session.scalar(
        select(DoorOverride.mode)
        .where(DoorOverride.door_id == door_id, DoorOverride.lifted_at.is_(None))
        .order_by(DoorOverride.started_at.desc(), DoorOverride.id.desc())
        .limit(1)
    )


Window = tuple[int, int, int]


def check_windows(windows: Iterable[Sequence[int]]) -> list[Window]:
    """Weekly windows (weekday 0-6 Monday first, start and end minute, start before end), sorted."""
    checked: list[Window] = []
    for window in windows:
        if len(window) != 3:
            raise RuleViolation("Each window is a weekday, a start and an end.", code="bad_window")
        weekday, start, end = (int(v) for v in window)
        if not 0 <= weekday <= 6 or not 0 <= start < end <= 1440:
            raise RuleViolation(
                "A window needs a weekday from Monday to Sunday and a start before its end within the day.",
                code="bad_window",
            )
        checked.append((weekday, start, end))
    if len(checked) > 64:
        raise RuleViolation("At most 64 unlock windows per door.", code="bad_window")
    return sorted(set(checked))


def unlock_schedule(session: DbSession, door_id: int) -> DoorUnlockSchedule | None:
    """A door's unlock schedule, if it has one."""
    return session.get(DoorUnlockSchedule, door_id)


def set_unlock_schedule(
    session: DbSession,
    actor: Actor,
    door: Door,
    windows: Iterable[Sequence[int]],
    first_person_in: bool = False,
    open_on_holidays: bool = False,
) -> DoorUnlockSchedule | None:
    """Set (or, with no windows, remove) when a door stands unlocked for everyone."""
    _allow(session, actor, MANAGERS, "change unlock schedules")
    checked = check_windows(windows)
    row = session.get(DoorUnlockSchedule, door.id)
    if not checked:
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            row = DoorUnlockSchedule(door_id=door.id, updated_by=actor.label)
            session.add(row)
        row.windows = json.dumps([list(w) for w in checked])
        row.first_person_in = first_person_in
        row.open_on_holidays = open_on_holidays
        row.updated_at = utcnow()
        row.updated_by = actor.label
    session.flush()
    details = {"windows": [list(w) for w in checked], "first_person_in": first_person_in, "holidays": open_on_holidays}
    journal.append(session, door.site_id, JournalKind.DOOR_POLICY, {"door": door.id, "unlock_windows": True})
    audit.record(session, actor, "door.unlock_schedule", "door", door.id, site_id=door.site_id, details=details)
    return row if checked else None
