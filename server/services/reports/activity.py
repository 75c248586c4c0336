"""Door activity for the dashboard: entries per day by method, refusals by reason, busiest doors, face fallback.

Days are each site's own calendar days (its time zone, DST included); a day of one site and the same date at
another add up under that date. Every figure is an aggregate query (GROUP BY) per site and day over the
(site_id, decision, occurred_at, method, door_id, person_pseudonym) index, which answers them without reading
the events table. Today is counted on every request; the closed days before it are kept in a DayCache between
requests, so opening the dashboard costs today's rows, not thirty days' (see DayCache for when they are recounted).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import AccessEvent, ConsentRecord, FaceTemplate, Person, PersonStatus, Site, utcnow
from server.services.reports import timefmt
from server.services.session import DbSession

# The dashboard's window: today and the days before it, this many in all.
WINDOW_DAYS = 30


@dataclass
class DayFigures:
    """One site's door activity over one of its days."""

    entries: Counter[EntryMethod] = field(default_factory=Counter)  # granted, by method
    doors: Counter[int] = field(default_factory=Counter)  # granted, by door id
    refusals: Counter[str] = field(default_factory=Counter)  # denied, by the terminal's reason code
    face_refusals: int = 0  # denied presentations of a face
    # Granted entries of people with a face enrolled (now), by method: any but face is a fallback.
    enrolled: Counter[EntryMethod] = field(default_factory=Counter)

    def add(self, other: DayFigures) -> None:
        """Add `other`'s counts to these."""
        self.entries.update(other.entries)
        self.doors.update(other.doors)
        self.refusals.update(other.refusals)
        self.face_refusals += other.face_refusals
        self.enrolled.update(other.enrolled)


@dataclass(frozen=True)
class SiteDay:
    """A site's calendar day and its UTC bounds."""

    site_id: int
    timezone: str
    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Activity:
    """The window's figures: per day (oldest first, all sites together), today's, and the whole window's."""

    days: list[tuple[date, DayFigures]]
    today: DayFigures
    window: DayFigures
    first_day: date
    last_day: date


def site_days(site_id: int, timezone: str, at: datetime, count: int = WINDOW_DAYS) -> list[SiteDay]:
    """The site's last `count` calendar days up to the one containing `at`, oldest first, with UTC bounds."""
    zone = timefmt.zone(timezone)
    today = at.astimezone(zone).date()
    days = []
    for back in range(count - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(), tzinfo=zone).astimezone(at.tzinfo)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(at.tzinfo)
        days.append(SiteDay(site_id, timezone, day, start, end))
    return days


def live_consent(at: datetime) -> Any:
    """A consent that covers face matching at `at`: not withdrawn, not stale, not expired."""
    return and_(
        ConsentRecord.withdrawn_at.is_(None),
        ConsentRecord.stale_at.is_(None),
        or_(ConsentRecord.expires_at.is_(None), ConsentRecord.expires_at > at),
    )


def enrolled_pseudonyms(site_id: int, at: datetime) -> Any:
    """A subquery: pseudonyms of the site's active people with a face template under a live consent."""
    return (
        select(Person.pseudonym)
        .join(FaceTemplate, FaceTemplate.person_id == Person.id)
        .join(ConsentRecord, ConsentRecord.id == FaceTemplate.consent_id)
        .where(Person.site_id == site_id, Person.status == PersonStatus.ACTIVE, live_consent(at))
    )


def day_figures(session: DbSession, day: SiteDay, at: datetime | None = None) -> DayFigures:
    """Count one site's day: two GROUP BY queries over the site/decision/time index."""
    at = at or utcnow()
    in_day = (
        AccessEvent.site_id == day.site_id,
        AccessEvent.occurred_at >= day.start,
        AccessEvent.occurred_at < day.end,
    )
    # coalesce() keeps SQLite from reading the events through the pseudonym index instead of the day's range.
    enrolled = func.coalesce(AccessEvent.person_pseudonym, "").in_(enrolled_pseudonyms(day.site_id, at))
    figures = DayFigures()
    granted = session.execute(
        select(AccessEvent.method, AccessEvent.door_id, enrolled, func.count())
        .where(*in_day, AccessEvent.decision == Decision.GRANT)
        .group_by(AccessEvent.method, AccessEvent.door_id, enrolled)
    )
    for method, door_id, by_enrolled, count in granted:
        figures.entries[method] += count
        if door_id is not None:
            figures.doors[door_id] += count
        if by_enrolled:
            figures.enrolled[method] += count
    refused = session.execute(
        select(AccessEvent.method, AccessEvent.reason, func.count())
        .where(*in_day, AccessEvent.decision == Decision.DENY)
        .group_by(AccessEvent.method, AccessEvent.reason)
    )
    for method, reason, count in refused:
        figures.refusals[reason] += count
        if method is EntryMethod.FACE:
            figures.face_refusals += count
    return figures


class DayCache:
    """Figures of sites' closed days, kept between requests of one process (one per app).

    A closed day changes only when a terminal delivers events late (it was offline) or events are deleted
    (retention, erasure). Before each use the cache asks for the newest event id: events stored since the last
    look whose time falls on a kept day drop that day, and every day is recounted after `ttl` whatever happened,
    which bounds how long a deletion, or a late event committed out of id order, goes unseen.
    """

    def __init__(self, ttl: timedelta = timedelta(minutes=10)) -> None:
        self.ttl = ttl
        self._days: dict[tuple[int, str, date], tuple[datetime, DayFigures]] = {}
        self._watermark: int | None = None
        self._lock = threading.Lock()

    def refresh(self, session: DbSession, at: datetime) -> None:
        """Drop the days that new events fall on, and those counted longer than `ttl` ago."""
        newest = session.scalar(select(func.max(AccessEvent.id))) or 0
        with self._lock:
            if self._watermark is None or newest < self._watermark:
                self._days.clear()
            elif newest > self._watermark:
                earliest = dict(
                    session.execute(
                        select(AccessEvent.site_id, func.min(AccessEvent.occurred_at))
                        .where(AccessEvent.id > self._watermark, AccessEvent.id <= newest)
                        .group_by(AccessEvent.site_id)
                    ).all()
                )
                self._drop(lambda key, _: key[0] in earliest and self._ends(key) > earliest[key[0]])
            self._watermark = newest
            self._drop(lambda _, counted: counted <= at - self.ttl)

    def get(self, day: SiteDay) -> DayFigures | None:
        """The day's kept figures, if any."""
        with self._lock:
            kept = self._days.get((day.site_id, day.timezone, day.day))
        return kept[1] if kept is not None else None

    def put(self, day: SiteDay, figures: DayFigures, at: datetime) -> None:
        """Keep a closed day's figures, counted at `at`."""
        with self._lock:
            self._days[(day.site_id, day.timezone, day.day)] = (at, figures)

    def _drop(self, doomed: Any) -> None:
        for key in [key for key, (counted, _) in self._days.items() if doomed(key, counted)]:
            del self._days[key]

    @staticmethod
    def _ends(key: tuple[int, str, date]) -> datetime:
        _, timezone, day = key
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=timefmt.zone(timezone))


def activity(
    session: DbSession, at: datetime | None = None, cache: DayCache | None = None, days: int = WINDOW_DAYS
) -> Activity:
    """Every site's door activity over its last `days` days (today included); closed days from `cache` if given."""
    at = at or utcnow()
    if cache is not None:
        cache.refresh(session, at)
    by_day: dict[date, DayFigures] = {}
    today = DayFigures()
    sites = session.execute(select(Site.id, Site.timezone).order_by(Site.id)).all()
    for site_id, timezone in sites:
        window = site_days(site_id, timezone, at, days)
        for each in window:
            closed = each is not window[-1]
            figures = cache.get(each) if cache is not None and closed else None
            if figures is None:
                figures = day_figures(session, each, at)
                if cache is not None and closed:
                    cache.put(each, figures, at)
            by_day.setdefault(each.day, DayFigures()).add(figures)
            if not closed:
                today.add(figures)
    return _activity(by_day, today, at, days)


def _activity(by_day: dict[date, DayFigures], today: DayFigures, at: datetime, days: int) -> Activity:
    """The window's days in order, every calendar day present (an empty one is zeros)."""
    if not by_day:
        last = at.date()
        by_day = {last - timedelta(days=back): DayFigures() for back in range(days)}
    first, last = min(by_day), max(by_day)
    ordered = []
    window = DayFigures()
    day = first
    while day <= last:
        figures = by_day.get(day, DayFigures())
        ordered.append((day, figures))
        window.add(figures)
        day += timedelta(days=1)
    return Activity(ordered, today, window, first, last)


def top(counter: Counter[Any], n: int) -> list[tuple[Any, int]]:
    """The `n` largest counts, largest first (ties by key, so the order is stable)."""
    return sorted(((key, count) for key, count in counter.items() if count), key=lambda kv: (-kv[1], str(kv[0])))[:n]


def methods_seen(figures: Iterable[DayFigures]) -> list[EntryMethod]:
    """The methods with any entry in `figures`, in the wire enum's order."""
    seen: set[EntryMethod] = set()
    for each in figures:
        seen.update(method for method, count in each.entries.items() if count)
    return [method for method in EntryMethod if method in seen]
