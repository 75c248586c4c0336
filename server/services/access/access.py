"""Access groups, schedules and holidays, and the one place that decides who may use which door.

Permissions belong to the person (through access groups), never to a credential type: the same
check answers for face, card, ID document and app code, so a person without face data has exactly
the same access as a person with it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gatehouse_core.schedule import WeeklySchedule, Window
from server.models import (
    AccessGroup,
    Door,
    Holiday,
    JournalKind,
    Person,
    PersonStatus,
    Site,
    WeeklyWindow,
    access_group_members,
)
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.session import DbSession


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
    windows = list(windows)
    _check_doors(site, doors)
    name = _group_name(session, site, name)
    check_windows(windows)
    group = AccessGroup(site=site, name=name, open_on_holidays=open_on_holidays, doors=doors)
    group.windows = [
        WeeklyWindow(weekday=w.weekday, start_minute=w.start_minute, end_minute=w.end_minute) for w in windows
    ]
    session.add(group)
    session.flush()
    journal.append(session, site.id, JournalKind.SCHEDULE, {"group": group.id, "doors": [d.id for d in doors]})
    audit.record(session, actor, "group.create", "access_group", group.id, site_id=site.id, details={"name": name})
    return group


class WindowsRejected(RuleViolation):
    """Weekly windows that cannot be saved; `problems` maps a window's position to a reason code."""

    def __init__(self, problems: dict[int, str]) -> None:
        super().__init__(
            "Some time windows overlap others on the same day; fix them and save again.", code="bad_windows"
        )
        self.problems = problems


def check_windows(windows: Sequence[Window]) -> None:
    """Refuse windows that overlap another window of the same weekday (Window itself keeps each in the day)."""
    problems: dict[int, str] = {}
    by_day: dict[int, list[int]] = {}
    for index, window in enumerate(windows):
        by_day.setdefault(window.weekday, []).append(index)
    for indexes in by_day.values():
        ordered = sorted(indexes, key=lambda i: (windows[i].start_minute, windows[i].end_minute))
        reach, reached_by = -1, -1  # the latest end so far, and which window reaches it
        for index in ordered:
            window = windows[index]
            if window.start_minute < reach:
                problems[max(index, reached_by)] = "overlap"
            if window.end_minute > reach:
                reach, reached_by = window.end_minute, index
    if problems:
        raise WindowsRejected(problems)


def _group_name(session: DbSession, site: Site, name: str, group: AccessGroup | None = None) -> str:
    """The cleaned name, refused if empty or taken by another group of the site."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 120:
        raise RuleViolation("Give the group a name (up to 120 characters).", code="group_name_missing")
    clash = session.scalar(select(AccessGroup.id).where(AccessGroup.site_id == site.id, AccessGroup.name == name))
    if clash is not None and (group is None or clash != group.id):
        raise Conflict(
            f"Site {site.code} already has an access group named {name!r}; choose another name.", code="duplicate_group"
        )
    return name


def _check_doors(site: Site, doors: Sequence[Door]) -> None:
    if any(d.site_id != site.id for d in doors):
        raise RuleViolation("An access group can only contain doors of its own site.", code="foreign_door")


def update_group(
    session: DbSession,
    actor: Actor,
    group: AccessGroup,
    *,
    name: str,
    doors: Iterable[Door],
    windows: Iterable[Window],
    open_on_holidays: bool,
) -> AccessGroup:
    """Change a group's name, doors, weekly windows and holiday rule; terminals learn what affects them.

    A changed schedule or holiday rule is one SCHEDULE entry. Changed doors also change which terminals
    must hold the group's members, so each added or removed door gets a DOOR_POLICY entry: the terminals
    serving it take a fresh snapshot (cheaper than one entry per member of a large group).
    """
    site = group.site
    doors = sorted({d.id: d for d in doors}.values(), key=lambda d: d.id)
    windows = list(windows)
    _check_doors(site, doors)
    name = _group_name(session, site, name, group)
    check_windows(windows)

    old_doors = {d.id for d in group.doors}
    new_doors = {d.id for d in doors}
    old_windows = sorted((w.weekday, w.start_minute, w.end_minute) for w in group.windows)
    new_windows = sorted((w.weekday, w.start_minute, w.end_minute) for w in windows)
    changed: dict[str, object] = {}
    if name != group.name:
        changed["name"] = name
        group.name = name
    if new_doors != old_doors:
        changed["doors"] = sorted(new_doors)
        group.doors = list(doors)
    if new_windows != old_windows:
        changed["windows"] = len(new_windows)
        group.windows = [WeeklyWindow(weekday=d, start_minute=s, end_minute=e) for d, s, e in new_windows]
    if open_on_holidays != group.open_on_holidays:
        changed["open_on_holidays"] = open_on_holidays
        group.open_on_holidays = open_on_holidays
    if not changed:
        return group
    session.flush()
    if changed.keys() - {"name"}:
        # Terminals never see group names, so a rename alone needs no journal entry.
        journal.append(session, site.id, JournalKind.SCHEDULE, {"group": group.id, "doors": sorted(new_doors)})
    moved = sorted(old_doors ^ new_doors)
    has_members = session.scalar(
        select(access_group_members.c.person_id).where(access_group_members.c.group_id == group.id).limit(1)
    )
    if moved and has_members is not None:
        for door_id in moved:
            journal.append(session, site.id, JournalKind.DOOR_POLICY, {"door": door_id, "group": group.id})
    audit.record(session, actor, "group.update", "access_group", group.id, site_id=site.id, details=changed)
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
    name = " ".join(name.split())
    if not 1 <= len(name) <= 120:
        raise RuleViolation("Give the holiday a name (up to 120 characters).", code="holiday_name_missing")
    if session.scalar(select(Holiday.id).where(Holiday.site_id == site.id, Holiday.day == day)):
        raise Conflict(f"{day.isoformat()} is already a holiday at site {site.code}.", code="duplicate_holiday")
    holiday = Holiday(site_id=site.id, day=day, name=name)
    session.add(holiday)
    journal.append(session, site.id, JournalKind.SCHEDULE, {"holiday": day.isoformat()})
    audit.record(session, actor, "holiday.add", "site", site.id, site_id=site.id, details={"day": day.isoformat()})
    return holiday


def remove_holiday(session: DbSession, actor: Actor, holiday: Holiday) -> None:
    """Make a holiday an ordinary day again; terminals get the site's new holiday list."""
    if session.get(Holiday, holiday.id) is None:
        raise NotFound("This holiday has already been removed.", code="holiday_gone")
    site_id, day = holiday.site_id, holiday.day.isoformat()
    session.delete(holiday)
    session.flush()
    journal.append(session, site_id, JournalKind.SCHEDULE, {"holiday": day, "removed": True})
    audit.record(session, actor, "holiday.remove", "site", site_id, site_id=site_id, details={"day": day})


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


def may_enter(
    session: DbSession, person: Person, door: Door, at: datetime, holidays: Collection[date] | None = None
) -> AccessCheck:
    """Whether `person` may pass `door` at `at`; independent of how they identify themselves.

    `holidays` (the door's site's holiday dates) saves a query when the caller asks about many doors."""
    if person.status is not PersonStatus.ACTIVE:
        return AccessCheck(False, "revoked" if person.status is PersonStatus.MOVED_OUT else "suspended")
    if door.site_id != person.site_id:
        return AccessCheck(False, "wrong_door")
    groups = [g for g in person.access_groups if door in g.doors]
    if not groups:
        return AccessCheck(False, "wrong_door")
    site = door.site
    if holidays is None:
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
