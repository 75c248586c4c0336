"""Access events from terminals: stored exactly once, and only for doors the sending terminal serves."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Insert, case, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.models import AccessEvent, FaceTemplate, Person, Terminal, UTCDateTime, VisitorPass, terminal_doors, utcnow
from server.services.operations import door_states, feed
from server.services.reports import day_counts
from server.services.session import DbSession
from server.services.visitors import passes as pass_service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sender:
    """The terminal an event batch came from, as far as event checks need it."""

    terminal_id: int
    site_id: int
    doors: frozenset[int]


def sender_of(session: DbSession, terminal: Terminal) -> Sender:
    """A terminal's id, site and doors."""
    doors = session.scalars(select(terminal_doors.c.door_id).where(terminal_doors.c.terminal_id == terminal.id))
    return Sender(terminal.id, terminal.site_id, frozenset(doors))


@dataclass
class IngestResult:
    """Which events are settled (stored now or before) and which were refused for good."""

    settled: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def ingest(session: DbSession, batches: Sequence[tuple[Sender, Sequence[EventRecord]]]) -> IngestResult:
    """Store events, ignoring any already stored (same uid); refuse events for doors a terminal does not serve."""
    result = IngestResult()
    rows = []
    received = utcnow()
    for sender, events in batches:
        for event in events:
            if event.door not in sender.doors:
                result.rejected.append(event.uid)
                continue
            result.settled.append(event.uid)
            rows.append(
                {
                    "event_uid": event.uid,
                    "site_id": sender.site_id,
                    "terminal_id": sender.terminal_id,
                    "door_id": event.door,
                    "person_pseudonym": event.person,
                    "pass_id": event.pass_id,
                    "method": event.method,
                    "decision": event.decision,
                    "reason": event.reason,
                    "occurred_at": event.at,
                    "received_at": received,
                    "past_offline_bound": event.past_offline_bound,
                }
            )
    passes = {r["pass_id"] for r in rows if r["pass_id"] is not None}
    if passes:
        known = set(session.execute(select(VisitorPass.id, VisitorPass.site_id).where(VisitorPass.id.in_(passes))))
        for row in rows:
            # The pass may since have been deleted with its host; the event is kept without the link. A pass
            # of another site is never linked (nor counted): one site's terminals cannot use up another's.
            if (row["pass_id"], row["site_id"]) not in known:
                row["pass_id"] = None
    if result.rejected:
        log.warning("refused %d event(s) for doors their terminal does not serve", len(result.rejected))
    if rows:
        dialect = session.get_bind().dialect.name
        stmt: Insert
        if dialect == "postgresql":
            stmt = postgresql.insert(AccessEvent).on_conflict_do_nothing(index_elements=["event_uid"])
        else:
            stmt = sqlite.insert(AccessEvent).on_conflict_do_nothing(index_elements=["event_uid"])
        # Only events stored now (not redeliveries) count against their visitor pass, a template's use or a day.
        stored = session.execute(
            stmt.returning(
                AccessEvent.id,
                AccessEvent.event_uid,
                AccessEvent.terminal_id,
                AccessEvent.pass_id,
                AccessEvent.decision,
                AccessEvent.method,
                AccessEvent.site_id,
                AccessEvent.person_pseudonym,
                AccessEvent.occurred_at,
                AccessEvent.door_id,
                AccessEvent.reason,
            ),
            rows,
        ).all()
        day_counts.count_events(session, stored)
        # The live screen and webhooks learn of each event stored now, in this transaction, in arrival order.
        feed.record(session, [feed.event_item(row) for row in sorted(stored, key=lambda row: row.id)])
        # A terminal's alarm events become alarms; only events stored now, so a redelivery never raises twice.
        door_states.alarms_from_events(session, stored)
        pass_service.count_uses(
            session, [row.pass_id for row in stored if row.pass_id is not None and row.decision is Decision.GRANT]
        )
        _record_face_matches(
            session,
            [
                (row.site_id, row.person_pseudonym, row.occurred_at)
                for row in stored
                if row.method is EntryMethod.FACE
                and row.decision is Decision.GRANT
                and row.person_pseudonym is not None
            ],
        )
    return result


def _record_face_matches(session: DbSession, matches: Iterable[tuple[int, str, datetime]]) -> None:
    """Move `last_matched_at` of the templates of people let in by face (site, pseudonym, time) to the latest.

    Retention erases templates unused for long; this is what "used" means. One SELECT and one UPDATE per
    batch; a late (older) event never moves the time back.
    """
    latest: dict[tuple[int, str], datetime] = {}
    for site_id, pseudonym, at in matches:
        latest[(site_id, pseudonym)] = max(at, latest.get((site_id, pseudonym), at))
    if not latest:
        return
    # A pseudonym counts only at its own site: another site's terminal cannot keep a template alive.
    people = session.execute(
        select(Person.id, Person.site_id, Person.pseudonym).where(Person.pseudonym.in_({p for _, p in latest}))
    )
    times = {pid: latest[(site_id, p)] for pid, site_id, p in people if (site_id, p) in latest}
    if not times:
        return
    matched = case({pid: literal(at, UTCDateTime()) for pid, at in times.items()}, value=FaceTemplate.person_id)
    session.execute(
        update(FaceTemplate)
        .where(
            FaceTemplate.person_id.in_(times),
            or_(FaceTemplate.last_matched_at.is_(None), FaceTemplate.last_matched_at < matched),
        )
        .values(last_matched_at=matched)
        .execution_options(synchronize_session="fetch")
    )
