"""Figures for the console's dashboard and terminals page: terminals, sync lag, deletions, alarms, door activity.

Every query stays cheap with a million access events: door activity is read from the daily counts
(reports.activity), alarms per site over the decision index (reports.alarm_board), and nothing counts the whole
events table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import selectinload

from gatehouse_core.wire.messages import CommandOp, EntryMethod
from server.models import (
    Alarm,
    CommandStatus,
    ConsentRecord,
    Door,
    ErasureConfirmation,
    ErasureReceipt,
    FaceTemplate,
    Person,
    PersonStatus,
    Site,
    Terminal,
    TerminalCommand,
    TerminalStatus,
    UTCDateTime,
    utcnow,
)
from server.services.reports.activity import Activity, ReportCache, activity, live_consent, top
from server.services.reports.alarm_board import RECENT_DAYS, AlarmBoard, alarm_board
from server.services.session import DbSession

# How many offline or lagging terminals, and open alarms, the dashboard names before saying "and N more".
SHOWN = 10
# How many of the busiest doors the dashboard names.
BUSIEST = 8
T = TypeVar("T")


@dataclass(frozen=True)
class TerminalLine:
    """One terminal as the dashboard and the terminals page list it."""

    terminal: Terminal
    site: Site
    lag: int  # journal changes of its site it has not acknowledged


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows, computed at `at`."""

    at: datetime
    sites: int
    doors: int
    people: int
    online: int
    offline: int
    unknown: int
    not_online: list[TerminalLine]  # offline and never-seen terminals, longest silent first
    max_lag: int
    lagging: list[TerminalLine]  # terminals behind their site's journal, most behind first
    pending_deletions: int  # terminal confirmations of face-template erasures still awaited
    overdue_deletions: int  # of those, pending longer than the site's erasure alarm deadline
    alarms: list[Alarm]  # open server alarms, newest first, at most SHOWN
    alarm_count: int  # every alarm: open server alarms and recent terminal alarms (board.total)
    entries_today: list[tuple[EntryMethod, int]]  # granted entries today per method, every method listed
    entries_total: int
    board: AlarmBoard
    activity: Activity
    face: FaceUse
    failed_commands: list[FailedCommand]  # door commands that failed or went unanswered lately, newest first
    busiest: list[DoorLine]  # the doors with the most entries over the window, most first


@dataclass(frozen=True)
class DoorLine:
    """A door with its granted entries today and over the window."""

    door_id: int
    name: str
    site: str
    today: int
    window: int


@dataclass(frozen=True)
class FaceUse:
    """Face opt-in at the sites with face entry on: active people there, and those with a face enrolled."""

    face_sites: int
    people: int
    enrolled: int

    @property
    def rate(self) -> float | None:
        """Enrolled people as a share of the people who could enrol."""
        return self.enrolled / self.people if self.people else None


@dataclass(frozen=True)
class FailedCommand:
    """A door command that failed or expired, with where it was for."""

    command: TerminalCommand
    terminal: str
    site: str
    door: str | None


def terminal_lines(session: DbSession, *, doors: bool = True) -> list[TerminalLine]:
    """Every terminal with its site, doors (unless not wanted) and lag, by site and name (no N+1)."""
    loads = [selectinload(Terminal.site), *([selectinload(Terminal.doors)] if doors else [])]
    stmt = (
        select(Terminal)
        .join(Site, Site.id == Terminal.site_id)
        .options(*loads)
        .order_by(Site.name, Site.id, Terminal.name)
    )
    return [TerminalLine(t, t.site, t.lag) for t in session.scalars(stmt)]


def day_bounds(timezone: str, at: datetime) -> tuple[datetime, datetime]:
    """The UTC start and end of the calendar day containing `at` in `timezone`."""
    zone = ZoneInfo(timezone)
    local_day = at.astimezone(zone).date()
    start = datetime.combine(local_day, time(), tzinfo=zone)
    end = datetime.combine(local_day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def deletions(session: DbSession, at: datetime | None = None) -> tuple[int, int]:
    """(pending, overdue) terminal confirmations of erased face templates; overdue per the site's deadline."""
    at = at or utcnow()
    hours = dict(session.execute(select(Site.id, Site.erasure_alarm_hours)).all())
    if not hours:
        return 0, 0
    # Each site's deadline as a literal picked by the receipt's site: one query, no date arithmetic in SQL.
    deadline = case(
        {site_id: literal(at - timedelta(hours=h), UTCDateTime()) for site_id, h in hours.items()},
        value=ErasureReceipt.site_id,
    )
    pending, overdue = session.execute(
        select(func.count(), func.sum(case((ErasureReceipt.erased_on_server_at <= deadline, 1), else_=0)))
        .select_from(ErasureConfirmation)
        .join(ErasureReceipt, ErasureReceipt.id == ErasureConfirmation.receipt_id)
        .where(ErasureConfirmation.confirmed_at.is_(None))
    ).one()
    return pending or 0, overdue or 0


def face_use(session: DbSession, at: datetime | None = None) -> FaceUse:
    """Active people at face-entry sites, and how many of them have a face template under a live consent."""
    at = at or utcnow()
    face_sites = select(Site.id).where(Site.face_enabled.is_(True))
    here = (Person.status == PersonStatus.ACTIVE, Person.site_id.in_(face_sites))
    people = session.scalar(select(func.count()).select_from(Person).where(*here)) or 0
    enrolled = session.scalar(
        select(func.count(func.distinct(FaceTemplate.person_id)))
        .join(Person, Person.id == FaceTemplate.person_id)
        .join(ConsentRecord, ConsentRecord.id == FaceTemplate.consent_id)
        .where(*here, live_consent(at))
    )
    sites = session.scalar(select(func.count()).select_from(face_sites.subquery())) or 0
    return FaceUse(sites, people, enrolled or 0)


def failed_commands(session: DbSession, at: datetime | None = None, days: int = RECENT_DAYS) -> list[FailedCommand]:
    """Door-opening commands of the last `days` days that failed or that no terminal answered, newest first."""
    at = at or utcnow()
    rows = session.execute(
        select(TerminalCommand, Terminal.name, Site.name, Door.name)
        .join(Terminal, Terminal.id == TerminalCommand.terminal_id)
        .join(Site, Site.id == Terminal.site_id)
        .outerjoin(Door, Door.id == TerminalCommand.door_id)
        .where(
            TerminalCommand.op == CommandOp.OPEN_DOOR,
            TerminalCommand.status.in_([CommandStatus.FAILED, CommandStatus.EXPIRED]),
            TerminalCommand.requested_at >= at - timedelta(days=days),
        )
        .order_by(TerminalCommand.requested_at.desc(), TerminalCommand.id.desc())
        .limit(SHOWN + 1)
    )
    return [FailedCommand(command, terminal, site, door) for command, terminal, site, door in rows]


def busiest_doors(session: DbSession, doors: Activity, n: int = BUSIEST) -> list[DoorLine]:
    """The `n` doors with the most granted entries over the window, with their names and sites."""
    ranked = top(doors.window.doors, n)
    if not ranked:
        return []
    names = {
        door_id: (name, site)
        for door_id, name, site in session.execute(
            select(Door.id, Door.name, Site.name)
            .join(Site, Site.id == Door.site_id)
            .where(Door.id.in_([door_id for door_id, _ in ranked]))
        )
    }
    return [
        DoorLine(door_id, *names[door_id], doors.today.doors.get(door_id, 0), count)
        for door_id, count in ranked
        if door_id in names  # a door removed since is left out
    ]


def active_people(session: DbSession) -> int:
    """Active people at every site."""
    return session.scalar(select(func.count()).select_from(Person).where(Person.status == PersonStatus.ACTIVE)) or 0


def _kept(cache: ReportCache | None, name: str, at: datetime, count: Callable[[], T]) -> T:
    """`count()`, or the cache's figure under `name` while it is fresh."""
    return count() if cache is None else cache.people_figure(name, at, count)


def dashboard(session: DbSession, at: datetime | None = None, cache: ReportCache | None = None) -> Dashboard:
    """The dashboard's figures at `at` (now by default); counts over all people, and the door activity of past
    days, from `cache` while they hold."""
    at = at or utcnow()
    lines = terminal_lines(session, doors=False)
    by_status = {status: [line for line in lines if line.terminal.status is status] for status in TerminalStatus}
    never = datetime.min.replace(tzinfo=at.tzinfo)
    not_online = sorted(
        by_status[TerminalStatus.OFFLINE] + by_status[TerminalStatus.UNKNOWN],
        key=lambda line: (line.terminal.last_seen_at or never, line.terminal.name),
    )
    lagging = sorted((line for line in lines if line.lag > 0), key=lambda line: (-line.lag, line.terminal.name))
    pending, overdue = deletions(session, at)

    board = alarm_board(session, at)
    doors = activity(session, at, cache=cache)
    today = {method: doors.today.entries.get(method, 0) for method in EntryMethod}
    return Dashboard(
        at=at,
        sites=session.scalar(select(func.count()).select_from(Site)) or 0,
        doors=session.scalar(select(func.count()).select_from(Door)) or 0,
        people=_kept(cache, "active", at, lambda: active_people(session)),
        online=len(by_status[TerminalStatus.ONLINE]),
        offline=len(by_status[TerminalStatus.OFFLINE]),
        unknown=len(by_status[TerminalStatus.UNKNOWN]),
        not_online=not_online,
        max_lag=max((line.lag for line in lines), default=0),
        lagging=lagging,
        pending_deletions=pending,
        overdue_deletions=overdue,
        alarms=board.server_alarms,
        alarm_count=board.total,
        entries_today=list(today.items()),
        entries_total=sum(today.values()),
        board=board,
        activity=doors,
        face=_kept(cache, "face", at, lambda: face_use(session, at)),
        failed_commands=failed_commands(session, at),
        busiest=busiest_doors(session, doors),
    )
