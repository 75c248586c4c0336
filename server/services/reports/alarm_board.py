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

from sqlalchemy import func, select

from gatehouse_core.wire.messages import Decision
from server.models import AccessEvent, Alarm, AlarmKind, Site, utcnow
from server.services.privacy import alarms
from server.services.reports import event_log, timefmt
from server.services.reports.event_log import EventFilters, EventRow
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
class AlarmBoard:
    """Open server alarms and recent terminal alarms: totals, counts by kind, the newest of each."""

    server_alarms: list[Alarm]  # open, newest first, at most SHOWN
    server_count: int
    server_kinds: list[tuple[AlarmKind, int]]
    terminal_alarms: list[EventRow]  # newest first, at most SHOWN
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
    """Open server alarms and each site's terminal alarms since its first recent day, counted by GROUP BY."""
    at = at or utcnow()
    open_alarms = alarms.open_alarms(session)
    server_kinds = Counter(alarm.kind for alarm in open_alarms)
    sites: list[SiteAlarms] = []
    kinds: Counter[str] = Counter()
    newest: list[EventRow] = []
    for site_id, name, timezone in session.execute(select(Site.id, Site.name, Site.timezone).order_by(Site.name)):
        first, since = site_since(timezone, at)
        # The (site_id, decision, occurred_at) index: alarms are rare, so this reads only them.
        counted = session.execute(
            select(AccessEvent.reason, func.count())
            .where(
                AccessEvent.site_id == site_id,
                AccessEvent.decision == Decision.ALARM,
                AccessEvent.occurred_at >= since,
            )
            .group_by(AccessEvent.reason)
        ).all()
        count = sum(n for _, n in counted)
        if not count:
            continue
        kinds.update(dict(counted))
        sites.append(SiteAlarms(site_id, name, first, count))
        listed = EventFilters(site_id=site_id, decision=Decision.ALARM, since=since)
        shown = event_log.page(session, listed, limit=SHOWN)
        newest.extend(shown.rows)
    newest.sort(key=lambda row: (row.occurred_at, row.id), reverse=True)
    return AlarmBoard(
        server_alarms=open_alarms[:SHOWN],
        server_count=len(open_alarms),
        server_kinds=sorted(server_kinds.items(), key=lambda kv: (-kv[1], kv[0].value)),
        terminal_alarms=newest[:SHOWN],
        terminal_count=sum(site.count for site in sites),
        terminal_kinds=sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])),
        sites=sites,
    )
