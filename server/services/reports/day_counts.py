"""Daily event counts (the event_day_counts rollup): what the dashboard reads instead of the events.

Every access event is counted in the transaction that stores it, by count_events, called only for events
actually stored (a redelivery the events' unique uid turns away is never counted). A site's day is its own
calendar day in its time zone, DST included. Only counts are kept: retention and erasure of events leave them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import AccessEvent, EventDayCount, Person, ReportStamp, Site, utcnow
from server.models.report_stamps import PAST_DAY_COUNTS
from server.services.reports import timefmt
from server.services.reports.activity import has_face
from server.services.session import DbSession

# Events read per query when counting every stored event again; pseudonyms per IN list.
BATCH = 50_000
CHUNK = 500
# site_id, decision, day, method, door_id, reason, enrolled: the rollup's unique key. Only entries keep their
# door (the busiest doors, fallback at face doors); refusals and alarms are kept per site (door 0), which keeps a
# site's day to a few hundred rows.
Key = tuple[int, Decision, date, EntryMethod, int, str, bool]
_COLUMNS = ("site_id", "decision", "day", "method", "door_id", "reason", "enrolled")
_FACTS = (
    AccessEvent.site_id,
    AccessEvent.door_id,
    AccessEvent.method,
    AccessEvent.decision,
    AccessEvent.reason,
    AccessEvent.person_pseudonym,
    AccessEvent.occurred_at,
)


class EventFacts(Protocol):
    """What counting needs of an event: a stored AccessEvent, or a row of its columns."""

    site_id: int
    door_id: int | None
    method: EntryMethod
    decision: Decision
    reason: str
    person_pseudonym: str | None
    occurred_at: datetime


def local_day(timezone: str, at: datetime) -> date:
    """The calendar date at the site (its time zone) of the moment `at`."""
    return at.astimezone(timefmt.zone(timezone)).date()


def count_events(session: DbSession, events: Sequence[EventFacts], at: datetime | None = None) -> None:
    """Add events just stored to their days' counts, in the caller's transaction (one upsert for them all)."""
    if not events:
        return
    zones = dict(session.execute(select(Site.id, Site.timezone).where(Site.id.in_({e.site_id for e in events}))).all())
    let_in = sorted({e.person_pseudonym for e in events if e.decision is Decision.GRANT and e.person_pseudonym})
    now = at or utcnow()
    enrolled = _enrolled(session, let_in, now)
    counts = Counter(_key(event, zones, enrolled) for event in events)
    _add(session, counts)
    today = {site_id: local_day(zone, now) for site_id, zone in zones.items()}
    if any(key[2] < today.get(key[0], key[2]) for key in counts):
        # A late event (a terminal back from a cut-off) changed a past day: kept figures of past days are stale.
        bump_past_days(session)


def recount(bind: DbSession | Connection, at: datetime | None = None) -> int:
    """Count every stored event again, from an empty rollup; how many events (the migration, the bench's seed).

    Who had a face enrolled is taken at `at` (now): the events' own times are not recorded for it.
    """
    bind.execute(delete(EventDayCount))
    zones = dict(bind.execute(select(Site.id, Site.timezone)).all())
    enrolled = set(bind.scalars(select(Person.pseudonym).where(has_face(at or utcnow()))))
    counts: Counter[Key] = Counter()
    last, total = 0, 0
    while True:
        rows = bind.execute(
            select(AccessEvent.id, *_FACTS).where(AccessEvent.id > last).order_by(AccessEvent.id).limit(BATCH)
        ).all()
        if not rows:
            break
        counts.update(_key(row, zones, enrolled) for row in rows)
        last, total = rows[-1].id, total + len(rows)
    _add(bind, counts)
    # No version move here: a recount runs before any server reads (migration 0014 made the table it would move).
    return total


def bump_past_days(bind: DbSession | Connection) -> None:
    """Move the past days' version on (in the caller's transaction)."""
    dialect = bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ReportStamp).values(name=PAST_DAY_COUNTS, version=1)
    bind.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"version": ReportStamp.version + 1}))


def _enrolled(session: DbSession, pseudonyms: Sequence[str], at: datetime) -> set[str]:
    """Those of `pseudonyms` whose person has a face template under a live consent at `at`."""
    found: set[str] = set()
    for i in range(0, len(pseudonyms), CHUNK):
        chunk = pseudonyms[i : i + CHUNK]
        found.update(session.scalars(select(Person.pseudonym).where(Person.pseudonym.in_(chunk), has_face(at))))
    return found


def _key(event: EventFacts, zones: dict[int, str], enrolled: set[str]) -> Key:
    let_in = event.decision is Decision.GRANT and event.person_pseudonym in enrolled
    return (
        event.site_id,
        event.decision,
        local_day(zones.get(event.site_id, timefmt.UTC_NAME), event.occurred_at),
        event.method,
        (event.door_id or 0) if event.decision is Decision.GRANT else 0,
        event.reason,
        let_in,
    )


def _add(bind: DbSession | Connection, counts: Counter[Key]) -> None:
    """Upsert count = count + n for each key, in key order (concurrent writers lock rows in the same order)."""
    if not counts:
        return
    dialect = bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name
    rows = [{**dict(zip(_COLUMNS, key, strict=True)), "count": n} for key, n in sorted(counts.items())]
    if dialect == "postgresql":
        pg = postgresql.insert(EventDayCount)
        bind.execute(
            pg.on_conflict_do_update(index_elements=_COLUMNS, set_={"count": EventDayCount.count + pg.excluded.count}),
            rows,
        )
    else:
        lite = sqlite.insert(EventDayCount)
        bind.execute(
            lite.on_conflict_do_update(
                index_elements=_COLUMNS, set_={"count": EventDayCount.count + lite.excluded.count}
            ),
            rows,
        )
