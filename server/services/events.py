"""Access events from terminals: stored exactly once, and only for doors the sending terminal serves."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from gatehouse_core.wire.messages import Decision, EventRecord

from ..models import AccessEvent, Terminal, VisitorPass, terminal_doors, utcnow
from . import passes as pass_service
from .session import DbSession

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
        # Only events stored now (not redeliveries) count against their visitor pass.
        stored = session.execute(stmt.returning(AccessEvent.pass_id, AccessEvent.decision), rows)
        pass_service.count_uses(
            session, [pid for pid, decision in stored if pid is not None and decision is Decision.GRANT]
        )
    return result
