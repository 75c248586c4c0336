"""The access events log for the console: filtered, newest first, keyset-paged, and as a streamed CSV.

Pages are read per site over the (site_id, occurred_at) index and merged, so no query sorts or counts the
whole events table. People appear by name when their pseudonym resolves (one batch lookup per page).
Events hold no images, biometric data or credential values, and neither does anything made from them here.
"""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import AccessEvent, Door, Person, Site, Terminal
from server.services.reports import timefmt
from server.services.session import DbSession

PAGE_SIZE = 50
CSV_CHUNK = 1000
CSV_CAP = 100_000
# A name search matching more people than this only looks at the first ones; the page says to narrow it.
PERSON_MATCHES = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# `time` is ISO 8601 in the site's zone with its offset (2025-03-10T12:00:00+08:00); `time_zone` names the zone.
CSV_COLUMNS = (
    "time",
    "site",
    "door",
    "terminal",
    "method",
    "decision",
    "reason",
    "person_name",
    "pseudonym",
    "pass_id",
    "past_offline_bound",  # decided by a terminal cut off from the server past its site's max_offline_hours
    "time_zone",
)


@dataclass(frozen=True)
class EventFilters:
    """What to show; every field optional. `until` is exclusive; times are aware UTC."""

    site_id: int | None = None
    door_id: int | None = None
    terminal_id: int | None = None
    method: EntryMethod | None = None
    decision: Decision | None = None
    person: str | None = None  # a pseudonym, or part of a name
    since: datetime | None = None
    until: datetime | None = None

    def summary(self) -> dict[str, Any]:
        """The filters that are set, as plain values (for the audit entry of an export)."""
        values: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if value is None:
                continue
            values[key] = value.isoformat() if isinstance(value, datetime) else str(value)
        return values


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page ended: the last event's time and id (events are ordered by both, newest first)."""

    at: datetime
    id: int

    def encode(self) -> str:
        """A URL-safe form: microseconds since the epoch, a dot, the id."""
        micros = (self.at - _EPOCH) // _MICROSECOND
        return f"{micros}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """The cursor in `text`, or None if there is none or it is malformed."""
        if not text:
            return None
        micros, _, ident = text.partition(".")
        try:
            at = _EPOCH + int(micros) * _MICROSECOND
            return cls(at, int(ident))
        except (ValueError, OverflowError):
            return None


@dataclass(frozen=True)
class EventRow:
    """One event as the console shows it."""

    id: int
    occurred_at: datetime
    site: str
    timezone: str
    door: str | None
    terminal: str | None
    terminal_id: int | None
    method: EntryMethod
    decision: Decision
    reason: str
    pseudonym: str | None
    person_name: str | None
    person_id: int | None
    pass_id: int | None
    past_offline_bound: bool = False  # decided by a terminal cut off past its site's max_offline_hours

    @property
    def cursor(self) -> Cursor:
        """The position just after this event."""
        return Cursor(self.occurred_at, self.id)


@dataclass(frozen=True)
class EventPage:
    """One page of events and where the next (older) page starts."""

    rows: list[EventRow]
    older: Cursor | None
    # The person search matched more people than PERSON_MATCHES; only the first were looked for.
    person_search_capped: bool = False


def find_pseudonyms(session: DbSession, text: str) -> tuple[list[str], bool]:
    """Pseudonyms of people whose pseudonym is `text` or whose name contains it; and whether the list was capped."""
    text = text.strip()
    # An exact pseudonym first: it has a unique index, which an OR with the name search would not use.
    exact = session.scalar(select(Person.pseudonym).where(Person.pseudonym == text))
    if exact is not None:
        return [exact], False
    found = list(
        session.scalars(
            select(Person.pseudonym)
            .where(Person.full_name.icontains(text, autoescape=True))
            .order_by(Person.id)
            .limit(PERSON_MATCHES + 1)
        )
    )
    return found[:PERSON_MATCHES], len(found) > PERSON_MATCHES


def _site_scope(session: DbSession, filters: EventFilters) -> list[int] | None:
    """Sites to read, one query each: the chosen one (or the door's or terminal's), else every site.

    None means the filters contradict each other (a door of another site), so nothing matches.
    """
    wanted: set[int] = set()
    if filters.site_id is not None:
        wanted.add(filters.site_id)
    if filters.door_id is not None:
        wanted.add(session.scalar(select(Door.site_id).where(Door.id == filters.door_id)) or -1)
    if filters.terminal_id is not None:
        wanted.add(session.scalar(select(Terminal.site_id).where(Terminal.id == filters.terminal_id)) or -1)
    if len(wanted) > 1 or -1 in wanted:
        return None
    if wanted:
        return list(wanted)
    return list(session.scalars(select(Site.id).order_by(Site.id)))


def _conditions(filters: EventFilters, pseudonyms: list[str] | None, before: Cursor | None) -> list[Any]:
    conditions: list[Any] = []
    if filters.door_id is not None:
        conditions.append(AccessEvent.door_id == filters.door_id)
    if filters.terminal_id is not None:
        conditions.append(AccessEvent.terminal_id == filters.terminal_id)
    if filters.method is not None:
        conditions.append(AccessEvent.method == filters.method)
    if filters.decision is not None:
        conditions.append(AccessEvent.decision == filters.decision)
    if pseudonyms is not None:
        conditions.append(AccessEvent.person_pseudonym.in_(pseudonyms))
    if filters.since is not None:
        conditions.append(AccessEvent.occurred_at >= filters.since)
    if filters.until is not None:
        conditions.append(AccessEvent.occurred_at < filters.until)
    if before is not None:
        # The first half bounds the index range; the second breaks ties between events of the same instant.
        conditions.append(AccessEvent.occurred_at <= before.at)
        conditions.append(or_(AccessEvent.occurred_at < before.at, AccessEvent.id < before.id))
    return conditions


_COLUMNS = (
    AccessEvent.id,
    AccessEvent.occurred_at,
    AccessEvent.site_id,
    AccessEvent.door_id,
    AccessEvent.terminal_id,
    AccessEvent.method,
    AccessEvent.decision,
    AccessEvent.reason,
    AccessEvent.person_pseudonym,
    AccessEvent.pass_id,
    AccessEvent.past_offline_bound,
)


def _newest(session: DbSession, conditions: list[Any], limit: int) -> list[Any]:
    """The newest `limit` event rows meeting every condition."""
    stmt = (
        select(*_COLUMNS)
        .where(*conditions)
        .order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt))


def _raw_page(
    session: DbSession, filters: EventFilters, pseudonyms: list[str] | None, before: Cursor | None, limit: int
) -> list[Any]:
    """Up to `limit` matching event rows older than `before`, newest first."""
    sites = _site_scope(session, filters)
    if not sites or (pseudonyms is not None and not pseudonyms):
        return []
    conditions = _conditions(filters, pseudonyms, before)
    if pseudonyms is not None and filters.site_id is None and len(sites) > 1:
        # A person filter is served by the pseudonym index whatever the site.
        return _newest(session, conditions, limit)
    per_site = [_newest(session, [AccessEvent.site_id == site, *conditions], limit) for site in sites]
    if len(per_site) == 1:
        return per_site[0]
    merged = heapq.merge(*per_site, key=lambda row: (row.occurred_at, row.id), reverse=True)
    return [row for _, row in zip(range(limit), merged, strict=False)]


def _rows(session: DbSession, raw: list[Any]) -> list[EventRow]:
    """Events with their site, door, terminal and person names: one lookup each for the whole batch."""

    def names(model: Any, ids: set[Any], *columns: Any) -> dict[Any, Any]:
        if not ids:
            return {}
        return {row[0]: row[1:] for row in session.execute(select(model.id, *columns).where(model.id.in_(ids)))}

    sites = names(Site, {r.site_id for r in raw}, Site.name, Site.timezone)
    doors = names(Door, {r.door_id for r in raw if r.door_id is not None}, Door.name)
    terms = names(Terminal, {r.terminal_id for r in raw if r.terminal_id is not None}, Terminal.name)
    wanted = {r.person_pseudonym for r in raw if r.person_pseudonym is not None}
    people = (
        {
            p: (pid, name)
            for p, pid, name in session.execute(
                select(Person.pseudonym, Person.id, Person.full_name).where(Person.pseudonym.in_(wanted))
            )
        }
        if wanted
        else {}
    )
    rows = []
    for r in raw:
        site_name, timezone = sites.get(r.site_id, ("?", "UTC"))
        person_id, person_name = people.get(r.person_pseudonym, (None, None))
        rows.append(
            EventRow(
                id=r.id,
                occurred_at=r.occurred_at,
                site=site_name,
                timezone=timezone,
                door=doors[r.door_id][0] if r.door_id in doors else None,
                terminal=terms[r.terminal_id][0] if r.terminal_id in terms else None,
                terminal_id=r.terminal_id,
                method=r.method,
                decision=r.decision,
                reason=r.reason,
                pseudonym=r.person_pseudonym,
                person_name=person_name,
                person_id=person_id,
                pass_id=r.pass_id,
                past_offline_bound=r.past_offline_bound,
            )
        )
    return rows


def page(session: DbSession, filters: EventFilters, before: Cursor | None = None, limit: int = PAGE_SIZE) -> EventPage:
    """One page of matching events older than `before`, newest first, and the cursor of the next page."""
    pseudonyms: list[str] | None = None
    capped = False
    if filters.person:
        pseudonyms, capped = find_pseudonyms(session, filters.person)
    raw = _raw_page(session, filters, pseudonyms, before, limit + 1)
    rows = _rows(session, raw[:limit])
    older = rows[-1].cursor if len(raw) > limit and rows else None
    return EventPage(rows, older, capped)


def recent_for_pseudonym(session: DbSession, pseudonym: str, limit: int = 20) -> list[EventRow]:
    """One person's latest events, by their exact pseudonym: the pseudonym index alone (a person has few events),
    never the site's time index, which would read the site's events newest first until it found theirs."""
    return _rows(session, _newest(session, [AccessEvent.person_pseudonym == pseudonym], limit))


def recent_for_terminal(session: DbSession, terminal: Terminal, limit: int = 20) -> list[EventRow]:
    """A terminal's latest events (its site's time index, filtered to the terminal)."""
    return page(session, EventFilters(site_id=terminal.site_id, terminal_id=terminal.id), limit=limit).rows


def _safe(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csv_lines(session: DbSession, filters: EventFilters, *, cap: int = CSV_CAP, capped_note: str = "") -> Iterator[str]:
    """The matching events as CSV text, header first, in chunks of CSV_CHUNK rows, at most `cap` rows.

    If more events match, a last line holds `capped_note`. Reads with the same keyset as the pages, so
    events arriving meanwhile neither repeat nor shift rows.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield _drain(buffer)
    before: Cursor | None = None
    written = 0
    while written < cap:
        chunk = page(session, filters, before, limit=min(CSV_CHUNK, cap - written))
        for row in chunk.rows:
            writer.writerow(
                [
                    _safe(timefmt.iso_local(row.occurred_at, row.timezone)),
                    _safe(row.site),
                    _safe(row.door),
                    _safe(row.terminal),
                    _safe(row.method.value),
                    _safe(row.decision.value),
                    _safe(row.reason),
                    _safe(row.person_name),
                    _safe(row.pseudonym),
                    _safe(row.pass_id),
                    "yes" if row.past_offline_bound else "",
                    _safe(timefmt.zone(row.timezone).key),
                ]
            )
        written += len(chunk.rows)
        yield _drain(buffer)
        if chunk.older is None:
            return
        before = chunk.older
    writer.writerow([_safe(capped_note)])
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
