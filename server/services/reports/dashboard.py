"""Figures for the console's dashboard and terminals page: terminals, sync lag, deletions, alarms, entries today.

Every query stays cheap with a million access events: entries today are counted per site over the
(site_id, occurred_at) index, grouped by method, and nothing counts the whole events table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import (
    AccessEvent,
    Alarm,
    Door,
    ErasureConfirmation,
    ErasureReceipt,
    Person,
    PersonStatus,
    Site,
    Terminal,
    TerminalStatus,
    utcnow,
)
from server.services.privacy import alarms
from server.services.session import DbSession

# How many offline or lagging terminals, and open alarms, the dashboard names before saying "and N more".
SHOWN = 10


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
    alarms: list[Alarm]
    alarm_count: int
    entries_today: list[tuple[EntryMethod, int]]  # granted entries today per method, every method listed
    entries_total: int


def terminal_lines(session: DbSession) -> list[TerminalLine]:
    """Every terminal with its site, doors and lag, by site and name (one query per relationship, no N+1)."""
    stmt = (
        select(Terminal)
        .join(Site, Site.id == Terminal.site_id)
        .options(selectinload(Terminal.site), selectinload(Terminal.doors))
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


def entries_today(session: DbSession, at: datetime | None = None) -> dict[EntryMethod, int]:
    """Granted entries per method since midnight, each site counted in its own time zone."""
    at = at or utcnow()
    counts: dict[EntryMethod, int] = dict.fromkeys(EntryMethod, 0)
    for site_id, timezone in session.execute(select(Site.id, Site.timezone).order_by(Site.id)):
        start, end = day_bounds(timezone, at)
        rows = session.execute(
            select(AccessEvent.method, func.count())
            .where(
                AccessEvent.site_id == site_id,
                AccessEvent.occurred_at >= start,
                AccessEvent.occurred_at < end,
                AccessEvent.decision == Decision.GRANT,
            )
            .group_by(AccessEvent.method)
        )
        for method, count in rows:
            counts[method] += count
    return counts


def deletions(session: DbSession, at: datetime | None = None) -> tuple[int, int]:
    """(pending, overdue) terminal confirmations of erased face templates; overdue per the site's deadline."""
    at = at or utcnow()
    pending = overdue = 0
    for site_id, hours in session.execute(select(Site.id, Site.erasure_alarm_hours).order_by(Site.id)):
        lines = (
            select(func.count())
            .select_from(ErasureConfirmation)
            .join(ErasureReceipt, ErasureReceipt.id == ErasureConfirmation.receipt_id)
            .where(ErasureReceipt.site_id == site_id, ErasureConfirmation.confirmed_at.is_(None))
        )
        pending += session.scalar(lines) or 0
        overdue += session.scalar(lines.where(ErasureReceipt.erased_on_server_at <= at - timedelta(hours=hours))) or 0
    return pending, overdue


def dashboard(session: DbSession, at: datetime | None = None) -> Dashboard:
    """The dashboard's figures at `at` (now by default)."""
    at = at or utcnow()
    lines = terminal_lines(session)
    by_status = {status: [line for line in lines if line.terminal.status is status] for status in TerminalStatus}
    never = datetime.min.replace(tzinfo=at.tzinfo)
    not_online = sorted(
        by_status[TerminalStatus.OFFLINE] + by_status[TerminalStatus.UNKNOWN],
        key=lambda line: (line.terminal.last_seen_at or never, line.terminal.name),
    )
    lagging = sorted((line for line in lines if line.lag > 0), key=lambda line: (-line.lag, line.terminal.name))
    pending, overdue = deletions(session, at)
    open_alarms = alarms.open_alarms(session)
    today = entries_today(session, at)
    return Dashboard(
        at=at,
        sites=session.scalar(select(func.count()).select_from(Site)) or 0,
        doors=session.scalar(select(func.count()).select_from(Door)) or 0,
        people=session.scalar(select(func.count()).select_from(Person).where(Person.status == PersonStatus.ACTIVE))
        or 0,
        online=len(by_status[TerminalStatus.ONLINE]),
        offline=len(by_status[TerminalStatus.OFFLINE]),
        unknown=len(by_status[TerminalStatus.UNKNOWN]),
        not_online=not_online,
        max_lag=max((line.lag for line in lines), default=0),
        lagging=lagging,
        pending_deletions=pending,
        overdue_deletions=overdue,
        alarms=open_alarms[:SHOWN],
        alarm_count=len(open_alarms),
        entries_today=list(today.items()),
        entries_total=sum(today.values()),
    )
