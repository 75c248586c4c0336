"""Every kind of alarm the system records, counted and listed for the dashboard.

Two sources: alarms the server raises (the alarms table: an erasure a terminal has not confirmed, the face count
near its filing threshold, a terminal over its snapshot budget), open until resolved; and alarms terminals raise
as events (decision 'alarm', e.g. a keypad locked after repeated wrong codes), which the Events page lists. A
terminal's alarm has no resolution of its own, so the dashboard shows those of the last RECENT_DAYS days of each
site, and its links open Events filtered to exactly those (site, decision alarm, from the first of those days):
the counts here are the events listed there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import AccessEvent, Alarm, AlarmKind, Door, Site, Terminal, utcnow
from server.services.privacy import alarms
from server.services.reports import timefmt
from server.services.session import DbSession

# Terminals' alarms of today and the days before it, this many days in all, per site.
RECENT_DAYS = 7
# How many alarms of each source the dashboard lists before saying "and N more".
SHOWN = 10


@dataclass(frozen=True)
class SiteAlarms:
    """A site's terminal alarms over the recent days: how many, and the first day (for the Events link)."""

    site_id: int
    site: str
    since: date  # the site's date RECENT_DAYS - 1 days before today
    count: int


@dataclass(frozen=True)
class TerminalAlarm:
    """An alarm a terminal raised, as the dashboard lists it."""

    id: int
    occurred_at: datetime
    method: EntryMethod
    reason: str  # the terminal's code: brute_force for a keypad locked after repeated wrong codes
    terminal_id: int | None
    site: str
    timezone: str
    door: str | None
    terminal: str | None


@dataclass(frozen=True)
class AlarmBoard:
    """Open server alarms and recent terminal alarms: totals, counts by kind, the newest of each."""

    server_alarms: list[Alarm]  # open, newest first, at most SHOWN
    server_count: int
    server_kinds: list[tuple[AlarmKind, int]]
    terminal_alarms: list[TerminalAlarm]  # newest first, at most SHOWN
    terminal_count: int
    terminal_kinds: list[tuple[str, int]]  # by the terminal's reason code (brute_force: keypad lockout)
    sites: list[SiteAlarms]  # sites with terminal alarms, by name

    @property
    def total(self) -> int:
        """Every alarm the dashboard counts."""
        return self.server_count + self.terminal_count


def site_since(timezone: str, at: datetime, days: int = RECENT_DAYS) -> tuple[date, datetime]:
    """The site's first date of its last `days` days up to `at`, and that date's midnight in UTC."""
    zone = timefmt.zone(timezone)
    first = at.astimezone(zone).date() - timedelta(days=days - 1)
    return first, datetime.combine(first, time(), tzinfo=zone).astimezone(at.tzinfo)


def alarm_board(session: DbSession, at: datetime | None = None) -> AlarmBoard:
    """Open server alarms, and every site's terminal alarms since its first recent day: two GROUP BY/LIMIT reads."""
    at = at or utcnow()
    open_alarms = alarms.open_alarms(session)
    server_kinds = Counter(alarm.kind for alarm in open_alarms)
    sites = session.execute(select(Site.id, Site.name, Site.timezone).order_by(Site.name, Site.id)).all()
    first_day = {site_id: site_since(timezone, at) for site_id, _, timezone in sites}
    counted: list[Any] = []
    newest: list[Any] = []
    if first_day:
        # Each site's own range of the (site_id, decision, occurred_at) index, the decision inside each branch so
        # that SQLite reads those ranges (MULTI-INDEX OR) rather than the whole index; alarms are rare.
        alarm_events = or_(
            *(
                and_(
                    AccessEvent.site_id == site_id,
                    AccessEvent.decision == Decision.ALARM,
                    AccessEvent.occurred_at >= since,
                )
                for site_id, (_, since) in first_day.items()
            )
        )
        counted = list(
            session.execute(
                select(AccessEvent.site_id, AccessEvent.reason, func.count())
                .where(alarm_events)
                .group_by(AccessEvent.site_id, AccessEvent.reason)
            )
        )
        newest = list(
            session.execute(
                select(
                    AccessEvent.id,
                    AccessEvent.occurred_at,
                    AccessEvent.method,
                    AccessEvent.reason,
                    AccessEvent.terminal_id,
                    Site.name.label("site"),
                    Site.timezone,
                    Door.name.label("door"),
                    Terminal.name.label("terminal"),
                )
                .join(Site, Site.id == AccessEvent.site_id)
                .outerjoin(Door, Door.id == AccessEvent.door_id)
                .outerjoin(Terminal, Terminal.id == AccessEvent.terminal_id)
                .where(alarm_events)
                .order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
                .limit(SHOWN)
            )
        )
    per_site: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    for site_id, reason, count in counted:
        per_site[site_id] += count
        kinds[reason] += count
    return AlarmBoard(
        server_alarms=open_alarms[:SHOWN],
        server_count=len(open_alarms),
        server_kinds=sorted(server_kinds.items(), key=lambda kv: (-kv[1], kv[0].value)),
        terminal_alarms=[TerminalAlarm(*row) for row in newest],
        terminal_count=sum(per_site.values()),
        terminal_kinds=sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])),
        sites=[
            SiteAlarms(site_id, name, first_day[site_id][0], per_site[site_id])
            for site_id, name, _ in sites
            if per_site[site_id]
        ],
    )
