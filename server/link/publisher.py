"""The journal publisher: signed deltas and snapshots to each terminal, and answers to birth messages.

Everything here runs on the worker's one loop thread, so what it publishes on a terminal's topic is in
causal order: a snapshot's parts are never interleaved with deltas (while a terminal's snapshot streams,
its deltas and InSyncs wait behind it; see snapshots.py), a delta is never older than a snapshot sent
before it, and an InSync follows everything it vouches for. The site's published cursor moves only after
the broker has acknowledged every message of a range (QoS 1), or the message waits behind a snapshot
(a worker stopped before sending it is asked again by the terminal's next birth); a worker killed
mid-range republishes it and terminals drop the duplicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select, update

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.base import WireModel, encode
from gatehouse_core.wire.messages import Birth, Delta, Erased, InSync, Receipt
from gatehouse_core.wire.records import Record, Removal
from gatehouse_core.wire.signing import sign
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.link import roster
from server.link.changes import Changes, changes_in, delta_items, split_parts, template_ids
from server.link.roster import TerminalScope, TerminalSealer
from server.link.snapshots import SnapshotStreams
from server.models import AlarmKind, JournalEntry, Site, Terminal, TerminalStatus, utcnow
from server.services.operations import alarms
from server.services.privacy import erasure
from server.services.session import DbSession

log = logging.getLogger(__name__)

PART_BUDGET = 512 * 1024
RANGE_LIMIT = 1000


class Delivery(Protocol):
    """What paho's publish returns: something to wait on."""

    def wait_for_publish(self, timeout: float | None = None) -> None: ...

    def is_published(self) -> bool: ...


PublishFn = Callable[[str, bytes], Delivery]


class _Held:
    """A message waiting behind a terminal's snapshot: sent after its last part, not awaited here."""

    def wait_for_publish(self, timeout: float | None = None) -> None:
        """Nothing to wait for yet."""

    def is_published(self) -> bool:
        """Counts as handed over; if the worker stops first, the terminal's next birth catches it up."""
        return True


@dataclass(frozen=True)
class BirthAnswer:
    """What the server sent in reply to a birth message."""

    action: str  # "none", "live" (the live stream covers it), "delta", "snapshot"
    seq: int
    # A snapshot streamed over the next loop turns (or waiting for the terminal's budget): its stream sends
    # the InSync after its last part, so the worker must not send one now.
    streamed: bool = False


class SyncPublisher:
    """Publishes journal ranges, catch-ups, snapshots and receipts, all signed with the server key."""

    def __init__(
        self, keys: ServerKeys, publish: PublishFn, *, part_budget: int = PART_BUDGET, ack_timeout: float = 15.0
    ) -> None:
        self.keys = keys
        self._publish = publish
        self.part_budget = part_budget
        self.ack_timeout = ack_timeout
        self.snapshots = SnapshotStreams(
            lambda ident: TerminalSealer(keys, ident),
            self._send_now,
            lambda topic, payload: self._publish(topic, payload),
            lambda: self.part_budget,
        )

    def _send(self, topic: str, message: WireModel) -> Delivery:
        payload = sign(self.keys.signing_key, topic, encode(message))
        if self.snapshots.hold(topic, payload):
            return _Held()
        return self._publish(topic, payload)

    def _send_now(self, topic: str, message: WireModel) -> Delivery:
        return self._publish(topic, sign(self.keys.signing_key, topic, encode(message)))

    def advance_snapshots(self, session: DbSession) -> bool:
        """Send the next few parts of the snapshots under way (one loop turn's worth); True if any went out."""
        return self.snapshots.advance(session)

    def _confirmed(self, deliveries: Sequence[Delivery]) -> bool:
        deadline = time.monotonic() + self.ack_timeout
        for delivery in deliveries:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                delivery.wait_for_publish(remaining)
            except (RuntimeError, ValueError):
                return False
        return all(d.is_published() for d in deliveries)

    # ---- live publishing ---------------------------------------------------------------------------------

    def publish_pending(self, session: DbSession) -> bool:
        """Publish one range of unpublished journal entries per site; True if anything was published."""
        sites = list(session.scalars(select(Site).where(Site.journal_seq > Site.published_seq).order_by(Site.id)))
        done = False
        for site in sites:
            done |= self._publish_range(session, site)
        return done

    def _publish_range(self, session: DbSession, site: Site) -> bool:
        base = site.published_seq
        entries = list(
            session.execute(
                select(JournalEntry.seq, JournalEntry.kind, JournalEntry.payload)
                .where(JournalEntry.site_id == site.id, JournalEntry.seq > base)
                .order_by(JournalEntry.seq)
                .limit(RANGE_LIMIT)
            )
        )
        if not entries:
            # The journal was pruned past the cursor (or bumped after a restore): births will snapshot.
            site.published_seq = site.journal_seq
            session.commit()
            return False
        seq = entries[-1].seq
        if entries[0].seq != base + 1:
            log.warning("journal of %s has a gap after %d; terminals will resynchronise", site.code, base)
        changes = changes_in((e.kind, e.payload) for e in entries)
        started = time.perf_counter()
        deliveries, held = self._fan_out(session, site, base, seq, changes)
        if not self._confirmed(deliveries):
            session.rollback()
            log.warning("broker did not acknowledge range (%d, %d] of %s; will publish it again", base, seq, site.code)
            return False
        for terminal_id, ids in held.items():
            erasure.record_holdings(session, terminal_id, ids)
        session.execute(
            update(JournalEntry)
            .where(JournalEntry.site_id == site.id, JournalEntry.seq > base, JournalEntry.seq <= seq)
            .values(published_at=utcnow())
        )
        site.published_seq = seq
        session.commit()
        log.debug(
            "published (%d, %d] of %s to %d terminals in %.1f ms",
            base,
            seq,
            site.code,
            len(held),
            (time.perf_counter() - started) * 1000,
        )
        return True

    def _fan_out(
        self, session: DbSession, site: Site, base: int, seq: int, changes: Changes, only: int | None = None
    ) -> tuple[list[Delivery], dict[int, set[int]]]:
        data = roster.load_site(session, site)
        people = roster.load_people(session, site.id, changes.people)
        passes = roster.load_passes(session, site.id, changes.passes)
        deliveries: list[Delivery] = []
        held: dict[int, set[int]] = {}
        online = set(
            session.scalars(
                select(Terminal.id).where(Terminal.site_id == site.id, Terminal.status == TerminalStatus.ONLINE)
            )
        )
        for scope in roster.scopes_of_site(session, site.id, only):
            if changes.needs_snapshot(scope):
                # Streamed over the next loop turns, from scratch: what the terminal may hold has changed. Only to a
                # terminal online now: one that never connected has no broker session to keep the parts, and one
                # that is offline would meet a stream half sent; either asks for its snapshot in its next birth.
                if scope.terminal_id in online or only is not None:
                    self.snapshots.restart(session, site, scope)
                sent, ids = [], set()
            else:
                removals, records = delta_items(
                    changes, data, scope, people, passes, TerminalSealer(self.keys, scope.ident)
                )
                sent = self._delta(site.code, scope, base, seq, removals, records)
                ids = template_ids(records)
            deliveries += sent
            held[scope.terminal_id] = ids
        return deliveries, held

    def _delta(
        self, site_code: str, scope: TerminalScope, base: int, seq: int, removals: list[Removal], records: list[Record]
    ) -> list[Delivery]:
        topic = terminal_topic(site_code, scope.ident, Channel.SYNC)
        parts = split_parts(removals, records, self.part_budget)
        return [
            self._send(
                topic,
                Delta(
                    site=site_code,
                    terminal=scope.ident,
                    base_seq=base,
                    seq=seq,
                    part=i,
                    parts=len(parts),
                    removals=tuple(rem),
                    records=tuple(rec),
                ),
            )
            for i, (rem, rec) in enumerate(parts, start=1)
        ]

    # ---- births ------------------------------------------------------------------------------------------

    def answer_birth(self, session: DbSession, terminal: Terminal, birth: Birth) -> BirthAnswer:
        """Send a terminal what it lacks: nothing, a catch-up delta, or a snapshot."""
        site = terminal.site
        if self.snapshots.in_flight(site.code, terminal.ident) is not None:
            # One snapshot in flight per terminal: it answers this birth too, without more work.
            stream = self.snapshots.request(
                session, site, roster.scope_of(session, terminal), counted=True, nonce=birth.nonce
            )
            return BirthAnswer("snapshot", stream.seq or site.published_seq, streamed=True)
        # Publish what is pending first, so the answer and the live stream meet at the same sequence.
        if site.journal_seq > site.published_seq:
            base = site.published_seq
            published = self._publish_range(session, site)
            session.refresh(site)
            if published and birth.applied_seq == base:
                # The range just published started where this terminal stands: it is on its way already.
                return BirthAnswer("live", site.published_seq)
        scope = roster.scope_of(session, terminal)
        applied = birth.applied_seq
        head = site.published_seq
        if applied > head:
            # The terminal claims more than the journal ever held: a database restored from an older backup, or a
            # stolen terminal's forged birth. Only that terminal is reset (a snapshot within its budget sets it back
            # to the journal's sequence). The journal is not moved on one terminal's word: that would leave every
            # other terminal of the site behind a gap, and a claim of the largest sequence would leave no room for
            # the next change. Another terminal still ahead of a restored database is caught the same way at its
            # next birth, or by the roster-hash check after a catch-up.
            log.warning("terminal %s is at seq %d beyond the journal (%d); resetting it", terminal.ident, applied, head)
            _diverged(session, terminal, f"claims change {applied}, beyond the server's last ({head})", head)
            return self._answer_snapshot(session, site, scope, head, birth)
        if applied == head:
            if birth.roster_hash == roster.expected_hash(session, site, scope):
                alarms.resolve_cause(session, AlarmKind.SYNC_DIVERGENCE, terminal_id=terminal.id)
                return BirthAnswer("none", head)
            log.warning("terminal %s holds a roster that differs from the server's; sending a snapshot", terminal.ident)
            _diverged(session, terminal, f"holds a roster that differs from the server's at change {head}", head)
            return self._answer_snapshot(session, site, scope, head, birth)
        first = session.scalar(
            select(func.min(JournalEntry.seq)).where(JournalEntry.site_id == site.id, JournalEntry.seq > applied)
        )
        if first != applied + 1:
            return self._answer_snapshot(session, site, scope, head, birth)
        entries = session.execute(
            select(JournalEntry.kind, JournalEntry.payload).where(
                JournalEntry.site_id == site.id, JournalEntry.seq > applied, JournalEntry.seq <= head
            )
        )
        changes = changes_in((e.kind, e.payload) for e in entries)
        if changes.needs_snapshot(scope):
            return self._answer_snapshot(session, site, scope, head, birth)
        _, held = self._fan_out(session, site, applied, head, changes, only=terminal.id)
        for terminal_id, ids in held.items():
            erasure.record_holdings(session, terminal_id, ids)
        return BirthAnswer("delta", head)

    def _answer_snapshot(
        self, session: DbSession, site: Site, scope: TerminalScope, head: int, birth: Birth
    ) -> BirthAnswer:
        """A snapshot streamed over the next loop turns, within the terminal's budget; it sends the InSync."""
        self.snapshots.request(session, site, scope, counted=True, nonce=birth.nonce)
        return BirthAnswer("snapshot", head, streamed=True)

    def send_in_sync(self, site_code: str, ident: str, seq: int, nonce: str) -> Delivery | None:
        """Close the answer to a birth: everything up to `seq` was published to the terminal before this.

        While a snapshot for the terminal is in flight (a change the birth's answer published may have started one),
        the InSync would come before parts the terminal still needs: the stream confirms the birth after its last
        part instead, and this sends nothing.
        """
        stream = self.snapshots.in_flight(site_code, ident)
        if stream is not None:
            stream.nonce = nonce
            return None
        in_sync = InSync(site=site_code, terminal=ident, seq=seq, nonce=nonce)
        return self._send(terminal_topic(site_code, ident, Channel.SYNC), in_sync)

    # ---- receipts ----------------------------------------------------------------------------------------

    def send_receipt(
        self,
        site_code: str,
        ident: str,
        events: Sequence[str] = (),
        rejected: Sequence[str] = (),
        erasures: Sequence[Erased] = (),
    ) -> Delivery:
        """Tell a terminal which events are stored and which erasures recorded, so it may purge them."""
        receipt = Receipt(terminal=ident, events=tuple(events), rejected=tuple(rejected), erasures=tuple(erasures))
        return self._send(terminal_topic(site_code, ident, Channel.RECEIPT), receipt)


def _diverged(session: DbSession, terminal: Terminal, what: str, head: int) -> None:
    """Raise a sync-divergence alarm for `terminal` (once per journal position); a snapshot is on its way, and the
    alarm ends when the terminal next reports exactly the server's roster."""
    alarms.raise_alarm(
        session,
        AlarmKind.SYNC_DIVERGENCE,
        f"{terminal.id}@{head}",
        site_id=terminal.site_id,
        terminal_id=terminal.id,
        message=f"Terminal {terminal.name} {what}; it is being sent the whole roster again.",
    )
