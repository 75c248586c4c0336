"""Which doors a person can open, through which groups and schedules, and, when none, why not.

The answer is made from the same rules terminals decide by (`access.may_enter`, `access.schedule_of`, the
door's entry methods), so what the console says is what the door does. Face never changes it: a person
without face data reaches exactly the doors a person with it does, by card, ID document or app code.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.schedule import Window
from server.models import AccessGroup, CredentialStatus, Door, Holiday, Person, PersonStatus, terminal_doors
from server.services.access.access import may_enter, schedule_of
from server.services.session import DbSession


class Method(enum.StrEnum):
    """A way a person identifies at a door."""

    CARD = "card"
    ID_DOCUMENT = "id_document"
    APP_CODE = "app_code"
    FACE = "face"


class Blocker(enum.StrEnum):
    """Why a person can open no door right now."""

    MOVED_OUT = "moved_out"
    SUSPENDED = "suspended"
    NO_GROUPS = "no_groups"
    NO_DOORS = "no_doors"  # their groups contain no door
    NO_CREDENTIAL = "no_credential"
    NO_ACCEPTED_METHOD = "no_accepted_method"  # their credentials are of kinds their doors do not take
    NO_TERMINAL = "no_terminal"  # no terminal serves any of their doors
    HOLIDAY = "holiday"  # today is a site holiday and their groups are closed on holidays
    OUTSIDE_SCHEDULE = "outside_schedule"


@dataclass(frozen=True)
class ScheduleLine:
    """Consecutive weekdays (0 = Monday) sharing the same intervals, in minutes from local midnight."""

    first_day: int
    last_day: int
    intervals: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class GroupReach:
    """One of the person's groups: its weekly schedule as lines and whether it lets them in now."""

    group: AccessGroup
    lines: tuple[ScheduleLine, ...]
    closed_on_holidays: bool
    open_now: bool
    shut_for_holiday: bool = False  # its hours include now, but today is a holiday and it is closed on holidays


@dataclass(frozen=True)
class DoorReach:
    """A door one of the person's groups covers, and whether they can open it now and with what."""

    door: Door
    groups: tuple[GroupReach, ...]
    methods: tuple[Method, ...]  # the person's methods this door accepts
    served: bool  # a terminal serves the door
    allowed_now: bool  # the terminals' permission check (status, group, schedule, holiday)

    @property
    def opens_now(self) -> bool:
        """Whether they can open this door at this moment."""
        return self.allowed_now and self.served and bool(self.methods)


@dataclass(frozen=True)
class Reach:
    """The answer to 'can this person get in?'."""

    groups: tuple[GroupReach, ...]
    doors: tuple[DoorReach, ...]
    methods: tuple[Method, ...]  # every way they can identify
    holiday_today: bool
    blockers: tuple[Blocker, ...]  # empty when some door opens for them now
    next_open: datetime | None = None  # when their hours next begin, if it is only the hours that keep them out

    @property
    def open_now(self) -> tuple[DoorReach, ...]:
        """The doors they can open at this moment."""
        return tuple(d for d in self.doors if d.opens_now)


def schedule_lines(windows: Sequence[Window]) -> tuple[ScheduleLine, ...]:
    """Weekly windows as lines such as Mon-Fri 07:00-22:00: runs of weekdays with the same intervals."""
    by_day: list[tuple[tuple[int, int], ...]] = [
        tuple(sorted((w.start_minute, w.end_minute) for w in windows if w.weekday == day)) for day in range(7)
    ]
    lines: list[ScheduleLine] = []
    day = 0
    while day < 7:
        intervals = by_day[day]
        last = day
        while last + 1 < 7 and by_day[last + 1] == intervals:
            last += 1
        if intervals:
            lines.append(ScheduleLine(day, last, intervals))
        day = last + 1
    return tuple(lines)


def methods_of(session: DbSession, person: Person, at: datetime) -> tuple[Method, ...]:
    """The ways the person can identify now: active credentials, and face where it is on and enrolled."""
    kinds = {c.kind for c in person.credentials if c.status is CredentialStatus.ACTIVE}
    found = [Method(kind.value) for kind in CredentialKind if kind in kinds]
    if person.site.face_enabled and person.face_templates and any(c.is_active(at) for c in person.consents):
        found.append(Method.FACE)
    return tuple(found)


def _accepted(door: Door, methods: Sequence[Method]) -> tuple[Method, ...]:
    flags = {
        Method.CARD: door.accepts_card,
        Method.ID_DOCUMENT: door.accepts_id_document,
        Method.APP_CODE: door.accepts_app_code,
        Method.FACE: door.accepts_face,
    }
    return tuple(m for m in methods if flags[m])


def doors_for(session: DbSession, person: Person, now: datetime) -> Reach:
    """The doors the person can open now, through which groups and schedules, and why none if none."""
    site = person.site
    tz = ZoneInfo(site.timezone)
    holidays = set(session.scalars(select(Holiday.day).where(Holiday.site_id == site.id)))
    holiday_today = now.astimezone(tz).date() in holidays
    groups = tuple(
        GroupReach(
            group=g,
            lines=schedule_lines(schedule_of(g).windows),
            closed_on_holidays=not g.open_on_holidays,
            open_now=schedule_of(g).is_open(now, tz, holidays),
            shut_for_holiday=holiday_today and not g.open_on_holidays and schedule_of(g).is_open(now, tz),
        )
        for g in sorted(person.access_groups, key=lambda g: g.name.casefold())
    )
    methods = methods_of(session, person, now)
    doors: dict[int, Door] = {d.id: d for g in groups for d in g.group.doors if d.site_id == site.id}
    # Which of these doors a terminal serves, in one query rather than one per door.
    served = set(session.scalars(select(terminal_doors.c.door_id).where(terminal_doors.c.door_id.in_(doors))))
    reached = tuple(
        DoorReach(
            door=door,
            groups=tuple(g for g in groups if door in g.group.doors),
            methods=_accepted(door, methods),
            served=door.id in served,
            allowed_now=may_enter(session, person, door, now, holidays).allowed,
        )
        for door in sorted(doors.values(), key=lambda d: d.name.casefold())
    )
    blockers = () if any(d.opens_now for d in reached) else _blockers(person, groups, reached, methods)
    next_open = None
    if Blocker.OUTSIDE_SCHEDULE in blockers or Blocker.HOLIDAY in blockers:
        covering = [g.group for g in groups if any(d.id in doors for d in g.group.doors)]
        next_open = next_opening(covering, now, tz, holidays)
    return Reach(groups, reached, methods, holiday_today, blockers, next_open)


def next_opening(
    groups: Sequence[AccessGroup], now: datetime, tz: ZoneInfo, holidays: Collection[date]
) -> datetime | None:
    """The next moment within a week at which one of `groups` is open (site-local, aware), by the same windows."""
    local = now.astimezone(tz)
    minute_now = local.hour * 60 + local.minute
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        starts = [
            max(w.start_minute, minute_now) if offset == 0 else w.start_minute
            for g in groups
            if g.open_on_holidays or day not in holidays
            for w in g.windows
            if w.weekday == day.weekday() and (offset > 0 or w.end_minute > minute_now)
        ]
        if starts:
            return datetime.combine(day, time(), tzinfo=tz) + timedelta(minutes=min(starts))
    return None


def _blockers(
    person: Person,
    groups: Sequence[GroupReach],
    doors: Sequence[DoorReach],
    methods: Sequence[Method],
) -> tuple[Blocker, ...]:
    """Every reason that keeps the person out now, most basic first."""
    found: list[Blocker] = []
    if person.status is PersonStatus.MOVED_OUT:
        found.append(Blocker.MOVED_OUT)
    elif person.status is PersonStatus.SUSPENDED:
        found.append(Blocker.SUSPENDED)
    if not groups:
        found.append(Blocker.NO_GROUPS)
    elif not doors:
        found.append(Blocker.NO_DOORS)
    if not methods:
        found.append(Blocker.NO_CREDENTIAL)
    elif doors and not any(d.methods for d in doors):
        found.append(Blocker.NO_ACCEPTED_METHOD)
    if doors and not any(d.served for d in doors):
        found.append(Blocker.NO_TERMINAL)
    if doors and person.status is PersonStatus.ACTIVE and not any(d.allowed_now for d in doors):
        shut = any(g.shut_for_holiday for d in doors for g in d.groups)
        found.append(Blocker.HOLIDAY if shut else Blocker.OUTSIDE_SCHEDULE)
    return tuple(found)
