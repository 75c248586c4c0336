"""Access groups, schedules and holidays, and the one place that decides who may use which door.

Permissions belong to the person (through access groups), never to a credential type: the same
check answers for face, card, ID document and app code, so a person without face data has exactly
the same access as a person with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gatehouse_core.schedule import WeeklySchedule, Window

from ..models import AccessGroup, Door, Holiday, JournalKind, Person, PersonStatus, Site, WeeklyWindow
from . import audit, journal
from .audit import Actor
from .errors import Conflict, RuleViolation
from .session import DbSession


def create_group(
    session: DbSession,
    actor: Actor,
    site: Site,
    name: str,
    doors: Iterable[Door],
    windows: Iterable[Window],
    *,
    open_on_holidays: bool = True,
) -> AccessGroup:
    """Create an access group over some of the site's doors with its weekly windows."""
    doors = list(doors)
    if any(d.site_id != site.id for d in doors):
        raise RuleViolation("An access group can only contain doors of its own site.", code="foreign_door")
    if session.scalar(select(AccessGroup.id).where(AccessGroup.site_id == site.id, AccessGroup.name == name)):
        raise Conflict(f"site {site.code} already has an access group named {name!r}", code="duplicate_group")
    group = AccessGroup(site=site, name=name.strip(), open_on_holidays=open_on_holidays, doors=doors)
    group.windows = [
        WeeklyWindow(weekday=w.weekday, start_minute=w.start_minute, end_minute=w.end_minute) for w in windows
    ]
    session.add(group)
    session.flush()
    journal.append(session, site.id, JournalKind.SCHEDULE, {"group": group.id, "doors": [d.id for d in doors]})
    audit.record(session, actor, "group.create", "access_group", group.id, site_id=site.id, details={"name": name})
    return group


def add_member(session: DbSession, actor: Actor, group: AccessGroup, person: Person) -> None:
    """Grant a person the group's doors and windows."""
    if person.site_id != group.site_id:
        raise RuleViolation("A person can only join access groups of their own site.", code="foreign_group")
    if person in group.members:
        return
    group.members.append(person)
    journal.append(session, group.site_id, JournalKind.GRANT, {"person": person.pseudonym, "group": group.id})
    audit.record(
        session, actor, "group.add_member", "person", person.id, site_id=group.site_id, details={"group": group.id}
    )


def remove_member(session: DbSession, actor: Actor, group: AccessGroup, person: Person) -> None:
    """Withdraw a person's access through this group."""
    if person not in group.members:
        return
    group.members.remove(person)
    journal.append(session, group.site_id, JournalKind.REVOKE, {"person": person.pseudonym, "group": group.id})
    audit.record(
        session, actor, "group.remove_member", "person", person.id, site_id=group.site_id, details={"group": group.id}
    )


def add_holiday(session: DbSession, actor: Actor, site: Site, day: date, name: str) -> Holiday:
    """Declare a site holiday; groups closed on holidays deny all day (site-local calendar)."""
    if session.scalar(select(Holiday.id).where(Holiday.site_id == site.id, Holiday.day == day)):
        raise Conflict(f"{day.isoformat()} is already a holiday at {site.code}", code="duplicate_holiday")
    holiday = Holiday(site_id=site.id, day=day, name=name.strip())
    session.add(holiday)
    journal.append(session, site.id, JournalKind.SCHEDULE, {"holiday": day.isoformat()})
    audit.record(session, actor, "holiday.add", "site", site.id, site_id=site.id, details={"day": day.isoformat()})
    return holiday


@dataclass(frozen=True)
class AccessCheck:
    """The answer to 'may this person use this door now', with a reason code."""

    allowed: bool
    reason: str


def schedule_of(group: AccessGroup) -> WeeklySchedule:
    """The pure schedule object terminals also evaluate."""
    return WeeklySchedule(
        tuple(Window(w.weekday, w.start_minute, w.end_minute) for w in group.windows), group.open_on_holidays
    )


def may_enter(session: DbSession, person: Person, door: Door, at: datetime) -> AccessCheck:
    """Whether `person` may pass `door` at `at`; independent of how they identify themselves."""
    if person.status is not PersonStatus.ACTIVE:
        return AccessCheck(False, "revoked" if person.status is PersonStatus.MOVED_OUT else "suspended")
    if door.site_id != person.site_id:
        return AccessCheck(False, "wrong_door")
    groups = [g for g in person.access_groups if door in g.doors]
    if not groups:
        return AccessCheck(False, "wrong_door")
    site = door.site
    holidays = set(session.scalars(select(Holiday.day).where(Holiday.site_id == site.id)))
    tz = ZoneInfo(site.timezone)
    if any(schedule_of(g).is_open(at, tz, holidays) for g in groups):
        return AccessCheck(True, "ok")
    return AccessCheck(False, "outside_schedule")


def allowed_doors(person: Person) -> set[int]:
    """Ids of every door the person's groups cover (ignoring time)."""
    if person.status is not PersonStatus.ACTIVE:
        return set()
    return {d.id for g in person.access_groups for d in g.doors}
