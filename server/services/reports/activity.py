"""Door activity for the dashboard: entries per day by method, refusals by reason, busiest doors, face fallback.

Days are each site's own calendar days (its time zone, DST included); a day of one site and the same date at
another add up under that date. Every figure is an aggregate query (GROUP BY) per site and day over the
(site_id, decision, occurred_at, method, door_id, person_pseudonym) index, which answers them without reading
the events table. Today is counted on every request; the closed days before it are kept in a ReportCache between
requests, so opening the dashboard costs today's rows, not thirty days' (see ReportCache for when they are recounted).

A fallback is an entry by card, ID document or code, at a door that accepts faces, by someone who has a face
enrolled (now): they could have used their face there and did not. Only sites with face entry on have any.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import AccessEvent, ConsentRecord, Door, FaceTemplate, Person, Site, utcnow
from server.services.reports import timefmt
from server.services.session import DbSession

# The dashboard's window: today and the days before it, this many in all.
WINDOW_DAYS = 30
T = TypeVar("T")


@dataclass
class DayFigures:
    """One site's door activity over one of its days."""

    entries: Counter[EntryMethod] = field(default_factory=Counter)  # granted, by method
    doors: Counter[int] = field(default_factory=Counter)  # granted, by door id
    refusals: Counter[str] = field(default_factory=Counter)  # denied, by the terminal's reason code
    face_refusals: int = 0  # denied presentations of a face
    # Granted entries at face doors of people with a face enrolled (now), by method: any but face is a fallback.
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
    face_doors: tuple[int, ...] = ()  # the site's doors that accept faces, if face entry is on there


@dataclass(frozen=True)
class Activity:
    """The window's figures: per day (oldest first, all sites together), today's, and the whole window's."""

    days: list[tuple[date, DayFigures]]
    today: DayFigures
    window: DayFigures
    first_day: date
    last_day: date


def site_days(
    site_id: int, timezone: str, at: datetime, count: int = WINDOW_DAYS, face_doors: tuple[int, ...] = ()
) -> list[SiteDay]:
    """The site's last `count` calendar days up to the one containing `at`, oldest first, with UTC bounds."""
    zone = timefmt.zone(timezone)
    today = at.astimezone(zone).date()
    days = []
    for back in range(count - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(), tzinfo=zone).astimezone(at.tzinfo)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(at.tzinfo)
        days.append(SiteDay(site_id, timezone, day, start, end, face_doors))
    return days


def live_consent(at: datetime) -> Any:
    """A consent that covers face matching at `at`: not withdrawn, not stale, not expired."""
    return and_(
        ConsentRecord.withdrawn_at.is_(None),
        ConsentRecord.stale_at.is_(None),
        or_(ConsentRecord.expires_at.is_(None), ConsentRecord.expires_at > at),
    )


def has_face(at: datetime) -> Any:
    """A condition on Person: they have a face template under a live consent."""
    return (
        select(FaceTemplate.id)
        .join(ConsentRecord, ConsentRecord.id == FaceTemplate.consent_id)
        .where(FaceTemplate.person_id == Person.id, live_consent(at))
        .exists()
    )


def day_figures(session: DbSession, day: SiteDay, at: datetime | None = None) -> DayFigures:
    """Count one site's day."""
    return sites_day_figures(session, [day], at)[0]


def sites_day_figures(session: DbSession, days: Sequence[SiteDay], at: datetime | None = None) -> list[DayFigures]:
    """Count one day of each of several sites (today everywhere): one GROUP BY query per kind of figure.

    Each query reads the sites' ranges of the site/decision/time index from the index alone (site_id IN ...,
    from the earliest start to the latest end); where the sites' days differ (time zones), a condition per
    site keeps each event to its own site's day.
    """
    at = at or utcnow()
    figures = [DayFigures() for _ in days]
    if not days:
        return figures
    position = {day.site_id: i for i, day in enumerate(days)}
    if len(position) != len(days):
        raise ValueError("one day per site")
    start, end = min(day.start for day in days), max(day.end for day in days)
    own_day = [
        or_(
            *(
                and_(
                    AccessEvent.site_id == day.site_id,
                    AccessEvent.occurred_at >= day.start,
                    AccessEvent.occurred_at < day.end,
                )
                for day in days
            )
        )
    ]
    same_bounds = all(day.start == start and day.end == end for day in days)

    def span(decision: Decision, sites: Iterable[int]) -> tuple[Any, ...]:
        return (
            AccessEvent.site_id.in_(list(sites)),
            AccessEvent.decision == decision,
            AccessEvent.occurred_at >= start,
            AccessEvent.occurred_at < end,
            *([] if same_bounds else own_day),
        )

    granted = session.execute(
        select(AccessEvent.site_id, AccessEvent.method, AccessEvent.door_id, func.count())
        .where(*span(Decision.GRANT, position))
        .group_by(AccessEvent.site_id, AccessEvent.method, AccessEvent.door_id)
    )
    for site_id, method, door_id, count in granted:
        found = figures[position[site_id]]
        found.entries[method] += count
        if door_id is not None:
            found.doors[door_id] += count
    refused = session.execute(
        select(AccessEvent.site_id, AccessEvent.method, AccessEvent.reason, func.count())
        .where(*span(Decision.DENY, position))
        .group_by(AccessEvent.site_id, AccessEvent.method, AccessEvent.reason)
    )
    for site_id, method, reason, count in refused:
        found = figures[position[site_id]]
        found.refusals[reason] += count
        if method is EntryMethod.FACE:
            found.face_refusals += count
    face_doors = [door for day in days for door in day.face_doors]
    if face_doors:
        # From the day's entries at face doors to each person (unique pseudonym) and their template: the work
        # grows with the day's entries there, not with the number of people enrolled.
        enrolled = session.execute(
            select(AccessEvent.site_id, AccessEvent.method, func.count())
            .join(Person, Person.pseudonym == AccessEvent.person_pseudonym)
            .where(
                *span(Decision.GRANT, [day.site_id for day in days if day.face_doors]),
                AccessEvent.door_id.in_(face_doors),
                has_face(at),
            )
            .group_by(AccessEvent.site_id, AccessEvent.method)
        )
        for site_id, method, count in enrolled:
            figures[position[site_id]].enrolled[method] += count
    return figures


class ReportCache:
    """Figures kept between requests of one process (one cache per app): closed days, and counts of people.

    A closed day changes only when a terminal delivers events late (it was offline) or events are deleted
    (retention, erasure). Before each use the cache asks for the newest event id: events stored since the last
    look whose time falls on a kept day drop that day, and every day is recounted after `ttl` whatever happened,
    which bounds how long a deletion, or a late event committed out of id order, goes unseen.
    Counts over the whole people table (active people, face opt-in) take tens of milliseconds at 100,000 people
    whatever the index; they are kept for `people_ttl`, as they move slowly.
    """

    def __init__(self, ttl: timedelta = timedelta(hours=1), people_ttl: timedelta = timedelta(minutes=1)) -> None:
        self.ttl = ttl
        self.people_ttl = people_ttl
        self._days: dict[tuple[int, str, date, tuple[int, ...]], tuple[datetime, DayFigures]] = {}
        self._watermark: int | None = None
        self._people: dict[str, tuple[datetime, Any]] = {}
        self._lock = threading.Lock()

    def people_figure(self, name: str, at: datetime, count: Callable[[], T]) -> T:
        """The figure kept under `name` if counted within `people_ttl` of `at`, else `count()` (then kept)."""
        with self._lock:
            kept = self._people.get(name)
        if kept is not None and kept[0] > at - self.people_ttl:
            value: T = kept[1]
            return value
        value = count()
        with self._lock:
            self._people[name] = (at, value)
        return value

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
            kept = self._days.get(self._key(day))
        return kept[1] if kept is not None else None

    def put(self, day: SiteDay, figures: DayFigures, at: datetime) -> None:
        """Keep a closed day's figures, counted at `at`."""
        with self._lock:
            self._days[self._key(day)] = (at, figures)

    def _drop(self, doomed: Any) -> None:
        for key in [key for key, (counted, _) in self._days.items() if doomed(key, counted)]:
            del self._days[key]

    @staticmethod
    def _key(day: SiteDay) -> tuple[int, str, date, tuple[int, ...]]:
        return day.site_id, day.timezone, day.day, day.face_doors

    @staticmethod
    def _ends(key: tuple[int, str, date, tuple[int, ...]]) -> datetime:
        _, timezone, day, _doors = key
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=timefmt.zone(timezone))


def activity(
    session: DbSession, at: datetime | None = None, cache: ReportCache | None = None, days: int = WINDOW_DAYS
) -> Activity:
    """Every site's door activity over its last `days` days (today included); closed days from `cache` if given."""
    at = at or utcnow()
    if cache is not None:
        cache.refresh(session, at)
    by_day: dict[date, DayFigures] = {}
    today = DayFigures()
    sites = session.execute(select(Site.id, Site.timezone, Site.face_enabled).order_by(Site.id)).all()
    face_doors: dict[int, list[int]] = {}
    for door_id, site_id in session.execute(select(Door.id, Door.site_id).where(Door.accepts_face.is_(True))):
        face_doors.setdefault(site_id, []).append(door_id)
    windows = [
        site_days(site_id, timezone, at, days, tuple(sorted(face_doors.get(site_id, []))) if face_on else ())
        for site_id, timezone, face_on in sites
    ]
    # Today at every site is counted on every call, in one query per kind of figure.
    todays = sites_day_figures(session, [window[-1] for window in windows], at)
    for window, today_here in zip(windows, todays, strict=True):
        for each in window[:-1]:
            figures = cache.get(each) if cache is not None else None
            if figures is None:
                figures = day_figures(session, each, at)
                if cache is not None:
                    cache.put(each, figures, at)
            by_day.setdefault(each.day, DayFigures()).add(figures)
        by_day.setdefault(window[-1].day, DayFigures()).add(today_here)
        today.add(today_here)
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
