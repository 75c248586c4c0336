"""Door activity for the dashboard: entries per day by method, refusals by reason, busiest doors, face fallback.

Days are each site's own calendar days (its time zone, DST included); a day of one site and the same date at
another add up under that date. Every figure is read from the daily counts (event_day_counts, kept by
reports.day_counts in the transaction that stores each event, today's included): a few GROUP BY queries over
at most the window's days times the sites times a few hundred rows, never the events.

A fallback is an entry by card, ID document or code, at a door that accepts faces, by someone who had a face
enrolled when the event was stored: they could have used their face there and did not. Only sites with face
entry on have any.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import ConsentRecord, Door, EventDayCount, FaceTemplate, Person, ReportStamp, Site, utcnow
from server.models.report_stamps import PAST_DAY_COUNTS
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
    # Granted entries at face doors of people with a face enrolled, by method: any but face is a fallback.
    enrolled: Counter[EntryMethod] = field(default_factory=Counter)

    def add(self, other: DayFigures) -> None:
        """Add `other`'s counts to these."""
        self.entries.update(other.entries)
        self.doors.update(other.doors)
        self.refusals.update(other.refusals)
        self.face_refusals += other.face_refusals
        self.enrolled.update(other.enrolled)


@dataclass(frozen=True)
class Activity:
    """The window's figures: entries per day (oldest first, all sites together), today's, and the whole window's.

    A day of `days` holds its entries only (what the chart shows); the other figures are today's and the window's.
    """

    days: list[tuple[date, DayFigures]]
    today: DayFigures
    window: DayFigures
    first_day: date
    last_day: date


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


class ReportCache:
    """Figures kept between requests of one process (one cache per app).

    Active people and face opt-in take tens of milliseconds at 100,000 people whatever the index; they move
    slowly, so each is kept for `people_ttl`. The door activity of the days before today is kept for as long as
    the rows it was read from are unchanged (the caller's key says so), in every process alike.
    """

    def __init__(self, people_ttl: timedelta = timedelta(minutes=1)) -> None:
        self.people_ttl = people_ttl
        self._people: dict[str, tuple[datetime, Any]] = {}
        self._past: tuple[Hashable, Any] | None = None
        self._lock = threading.Lock()

    def past_days(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The figures kept under `key` (the days' dates and their rows' stamp), else `compute()` (then kept).

        Only the newest key is kept: a new day or a late event replaces it.
        """
        with self._lock:
            kept = self._past
        if kept is not None and kept[0] == key:
            value: T = kept[1]
            return value
        value = compute()
        with self._lock:
            self._past = (key, value)
        return value

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


def activity(
    session: DbSession, at: datetime | None = None, days: int = WINDOW_DAYS, cache: ReportCache | None = None
) -> Activity:
    """Every site's door activity over its last `days` days (today included), from the daily counts.

    Today's figures are read on every call. The days before today change only when a late event lands on one
    (a terminal back from a cut-off), which moves their version (day_counts.bump_past_days): with a `cache`,
    their figures are kept and read again only when the dates or that version change.
    """
    at = at or utcnow()
    sites = session.execute(select(Site.id, Site.timezone)).all()
    today_of = {site_id: at.astimezone(timefmt.zone(timezone)).date() for site_id, timezone in sites}
    by_day = {today - timedelta(days=back): DayFigures() for today in today_of.values() for back in range(days)}
    today, rest = DayFigures(), DayFigures()  # today at each site; the window's days before it
    if today_of:
        entries, today = _figures(session, today_of, today_of)
        _merge(by_day, entries)
        if days > 1:
            first = {site_id: day - timedelta(days=days - 1) for site_id, day in today_of.items()}
            before = {site_id: day - timedelta(days=1) for site_id, day in today_of.items()}
            if cache is None:
                entries, rest = _figures(session, first, before)
            else:
                key = (tuple(sorted(first.items())), tuple(sorted(before.items())), _past_version(session))
                entries, rest = cache.past_days(key, lambda: _figures(session, first, before))
            _merge(by_day, entries)
    return _activity(by_day, today, rest, at, days)


# Granted entries per day and method, and the days' other figures, of the rows between two dates per site.
Figures = tuple[dict[date, Counter[EntryMethod]], DayFigures]


def _between(first: dict[int, date], last: dict[int, date]) -> Any:
    """Rows of each site from its `first` to its `last` day."""
    rows = EventDayCount
    if len(set(first.values())) == 1 and len(set(last.values())) == 1:
        # Every site on the same dates: one range per site of the key, read in its order (no sorting).
        day_from, day_to = next(iter(first.values())), next(iter(last.values()))
        return and_(rows.site_id.in_(first), rows.day >= day_from, rows.day <= day_to)
    return or_(*(and_(rows.site_id == s, rows.day >= first[s], rows.day <= last[s]) for s in first))


def _figures(session: DbSession, first: dict[int, date], last: dict[int, date]) -> Figures:
    """Entries per day, and the span's figures (doors, refusals, face fallbacks), from the daily counts."""
    rows = EventDayCount
    span = _between(first, last)
    count = func.sum(rows.count)
    granted = (rows.decision == Decision.GRANT, span)
    entries: dict[date, Counter[EntryMethod]] = {}
    figures = DayFigures()
    by_method = select(rows.day, rows.method, count).where(*granted).group_by(rows.day, rows.method)
    for day, method, n in session.execute(by_method):
        entries.setdefault(day, Counter())[method] += n
        figures.entries[method] += n
    by_door = select(rows.door_id, count).where(*granted, rows.door_id != 0).group_by(rows.door_id)
    for door_id, n in session.execute(by_door):
        figures.doors[door_id] += n
    face = (rows.method == EntryMethod.FACE).label("face")
    refused = select(rows.reason, face, count).where(rows.decision == Decision.DENY, span).group_by(rows.reason, face)
    for reason, by_face, n in session.execute(refused):
        figures.refusals[reason] += n
        if by_face:
            figures.face_refusals += n
    # The doors that accept faces now, at sites with face entry on now, as the dashboard always judged them.
    face_doors = select(Door.id).join(Site, Site.id == Door.site_id).where(Door.accepts_face, Site.face_enabled)
    enrolled = select(rows.method, count).where(*granted, rows.enrolled, rows.door_id.in_(face_doors))
    for method, n in session.execute(enrolled.group_by(rows.method)):
        figures.enrolled[method] += n
    return entries, figures


def _past_version(session: DbSession) -> int:
    """The version of the past days' counts (one primary-key read; day_counts moves it)."""
    return session.scalar(select(ReportStamp.version).where(ReportStamp.name == PAST_DAY_COUNTS)) or 0


def _merge(by_day: dict[date, DayFigures], entries: dict[date, Counter[EntryMethod]]) -> None:
    """Add entries per day into the window's days (copying: `entries` may be kept in a cache)."""
    for day, counter in entries.items():
        by_day.setdefault(day, DayFigures()).entries.update(counter)


def _activity(by_day: dict[date, DayFigures], today: DayFigures, rest: DayFigures, at: datetime, days: int) -> Activity:
    """The window's days in order, every calendar day present (an empty one is zeros), and its totals."""
    if not by_day:
        last = at.date()
        by_day = {last - timedelta(days=back): DayFigures() for back in range(days)}
    first, last = min(by_day), max(by_day)
    ordered = [
        (first + timedelta(days=n), by_day.get(first + timedelta(days=n), DayFigures()))
        for n in range((last - first).days + 1)
    ]
    window = DayFigures()
    window.add(today)
    window.add(rest)
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
