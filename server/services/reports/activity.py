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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Date, and_, case, func, literal, or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import ConsentRecord, Door, EventDayCount, FaceTemplate, Person, Site, utcnow
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
    """Counts over the whole people table, kept between requests of one process (one cache per app).

    Active people and face opt-in take tens of milliseconds at 100,000 people whatever the index; they move
    slowly, so each is kept for `people_ttl`.
    """

    def __init__(self, people_ttl: timedelta = timedelta(minutes=1)) -> None:
        self.people_ttl = people_ttl
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


def activity(session: DbSession, at: datetime | None = None, days: int = WINDOW_DAYS) -> Activity:
    """Every site's door activity over its last `days` days (today included), from the daily counts."""
    at = at or utcnow()
    sites = session.execute(select(Site.id, Site.timezone)).all()
    today_of = {site_id: at.astimezone(timefmt.zone(timezone)).date() for site_id, timezone in sites}
    by_day = {today - timedelta(days=back): DayFigures() for today in today_of.values() for back in range(days)}
    today, rest = DayFigures(), DayFigures()  # today at each site; the window's days before it
    if today_of:
        rows = EventDayCount
        first = {site_id: today - timedelta(days=days - 1) for site_id, today in today_of.items()}
        if len(set(today_of.values())) == 1:
            # Every site on the same dates: one range per site of the key, read in its order (no sorting).
            in_window = and_(
                rows.site_id.in_(today_of), rows.day >= min(first.values()), rows.day <= max(today_of.values())
            )
        else:
            in_window = or_(*(and_(rows.site_id == s, rows.day >= first[s], rows.day <= today_of[s]) for s in today_of))
        count = func.sum(rows.count)
        granted = (rows.decision == Decision.GRANT, in_window)
        by_method = select(rows.site_id, rows.day, rows.method, count).where(*granted)
        for site_id, day, method, n in session.execute(by_method.group_by(rows.site_id, rows.day, rows.method)):
            by_day[day].entries[method] += n
            (today if day == today_of[site_id] else rest).entries[method] += n
        # Beyond entries per day, the dashboard shows today's figures and the window's: few groups to count.
        on_today = (rows.day == case({s: literal(t, Date()) for s, t in today_of.items()}, value=rows.site_id)).label(
            "today"
        )
        by_door = select(rows.door_id, on_today, count).where(*granted, rows.door_id != 0)
        for door_id, is_today, n in session.execute(by_door.group_by(rows.door_id, on_today)):
            (today if is_today else rest).doors[door_id] += n
        face = (rows.method == EntryMethod.FACE).label("face")
        refused = select(rows.reason, face, on_today, count).where(rows.decision == Decision.DENY, in_window)
        for reason, by_face, is_today, n in session.execute(refused.group_by(rows.reason, face, on_today)):
            found = today if is_today else rest
            found.refusals[reason] += n
            if by_face:
                found.face_refusals += n
        # The doors that accept faces now, at sites with face entry on now, as the dashboard always judged them.
        face_doors = select(Door.id).join(Site, Site.id == Door.site_id).where(Door.accepts_face, Site.face_enabled)
        enrolled = select(rows.method, on_today, count).where(*granted, rows.enrolled, rows.door_id.in_(face_doors))
        for method, is_today, n in session.execute(enrolled.group_by(rows.method, on_today)):
            (today if is_today else rest).enrolled[method] += n
    return _activity(by_day, today, rest, at, days)


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
