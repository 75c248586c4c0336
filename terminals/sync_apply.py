"""Applying the server's sync messages on a terminal: verify, check the sequence, apply, report.

Nothing is applied unless it is signed by the pinned server key for this terminal's own topic, names
this terminal and site, and continues exactly from what the terminal has applied. Anything else is
logged and dropped; a gap makes the terminal announce itself again so the server sends what is missing.

After start and every reconnect the roster may lack deletions the server made meanwhile, so face matching
is held until the server's InSync for this connection's birth shows that everything it sent is applied.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, TypeAdapter, ValidationError

from gatehouse_core.wire.base import MAX_MESSAGE_BYTES, MessageError, decode
from gatehouse_core.wire.messages import Delta, InSync, Receipt, SnapshotPart
from gatehouse_core.wire.signing import SignatureError, verify
from terminals.store import TerminalStore

log = logging.getLogger(__name__)

_SYNC: TypeAdapter[Delta | SnapshotPart | InSync] = TypeAdapter(
    Annotated[Delta | SnapshotPart | InSync, Field(discriminator="type")]
)


@dataclass(frozen=True)
class Outcome:
    """What handling one sync message did."""

    applied: bool = False  # the store changed
    ack: bool = False  # the applied sequence moved or something was erased: tell the server
    resync: bool = False  # a gap or a failed snapshot: announce again to get what is missing
    note: str = ""
    people: frozenset[str] = frozenset()  # people added, changed or removed by a delta
    full: bool = False  # a snapshot replaced the whole roster
    in_sync: InSync | None = None  # the server has sent everything up to its seq (see FaceHold)


@dataclass
class _Staging:
    snapshot_id: str
    seq: int
    next_part: int


class SyncApplier:
    """The terminal's sync state machine: idle, in a multi-part delta, or staging a snapshot."""

    def __init__(self, store: TerminalStore, server_key: Ed25519PublicKey, site: str, terminal_id: str) -> None:
        self.store = store
        self.server_key = server_key
        self.site = site
        self.terminal_id = terminal_id
        self._partial: tuple[int, int, int] | None = None  # base, seq, next part of a multi-part delta
        self._staging: _Staging | None = None
        self.last_progress = time.monotonic()

    def busy(self) -> bool:
        """A multi-part delta or a snapshot is half-way."""
        return self._partial is not None or self._staging is not None

    def abandon(self, why: str) -> None:
        """Drop a half-received delta or snapshot (what was applied of a delta stays; it is idempotent)."""
        if self.busy():
            log.warning("abandoning incomplete sync: %s", why)
        self._partial = None
        if self._staging is not None:
            self.store.stage_reset()
            self._staging = None

    def _open(self, topic: str, payload: bytes) -> bytes | None:
        if len(payload) > MAX_MESSAGE_BYTES + 68:
            log.warning("dropped oversized message on %s", topic)
            return None
        try:
            return verify(self.server_key, topic, payload)
        except SignatureError as exc:
            log.warning("dropped message on %s: %s", topic, exc)
            return None

    def handle_sync(self, topic: str, payload: bytes) -> Outcome:
        """Handle one message from the sync topic."""
        body = self._open(topic, payload)
        if body is None:
            return Outcome(note="forged")
        try:
            message = _SYNC.validate_json(body)
        except ValidationError as exc:
            log.warning("dropped sync message: %d problem(s)", exc.error_count())
            return Outcome(note="invalid")
        if message.site != self.site or message.terminal != self.terminal_id:
            log.warning("dropped sync message addressed to %s/%s", message.site, message.terminal)
            return Outcome(note="misaddressed")
        if isinstance(message, InSync):
            return Outcome(note="in_sync", in_sync=message)
        if isinstance(message, Delta):
            return self._delta(message)
        return self._snapshot(message)

    def _delta(self, delta: Delta) -> Outcome:
        applied = self.store.applied_seq()
        if self._staging is not None:
            # Parts of a snapshot are published back to back; anything else in between means it was cut off.
            self.abandon("a delta arrived in the middle of a snapshot")
        if delta.seq <= applied:
            log.debug("ignored replayed or duplicate delta (%d, %d]", delta.base_seq, delta.seq)
            return Outcome(note="replay")
        if self._partial is not None:
            base, seq, next_part = self._partial
            in_order = (delta.base_seq, delta.seq, delta.part) == (base, seq, next_part)
        else:
            in_order = delta.base_seq == applied and delta.part == 1
        if not in_order:
            log.warning(
                "ignored out-of-order delta (%d, %d] part %d/%d at seq %d",
                delta.base_seq,
                delta.seq,
                delta.part,
                delta.parts,
                applied,
            )
            self._partial = None
            return Outcome(resync=True, note="gap")
        last = delta.part == delta.parts
        erased = self.store.apply(delta.removals, delta.records, delta.seq if last else None)
        self._partial = None if last else (delta.base_seq, delta.seq, delta.part + 1)
        self.last_progress = time.monotonic()
        people = frozenset(
            [r.key for r in delta.removals if r.kind == "person"]
            + [r.pseudonym for r in delta.records if r.kind == "person"]
        )
        return Outcome(applied=True, ack=last or bool(erased), note="delta", people=people)

    def _snapshot(self, part: SnapshotPart) -> Outcome:
        self._partial = None
        if part.part == 1:
            if part.seq < self.store.applied_seq() or part.snapshot_id == self.store.last_snapshot():
                log.warning("ignored replayed snapshot at seq %d", part.seq)
                return Outcome(note="replay")
            self.store.stage_reset()
            self._staging = _Staging(part.snapshot_id, part.seq, 1)
        staging = self._staging
        if staging is None or (part.snapshot_id, part.seq, part.part) != (
            staging.snapshot_id,
            staging.seq,
            staging.next_part,
        ):
            self.abandon("snapshot part out of order")
            return Outcome(resync=True, note="gap")
        self.store.stage(part.records)
        staging.next_part += 1
        self.last_progress = time.monotonic()
        if not part.last or part.roster_hash is None:
            return Outcome(note="staged")
        self._staging = None
        erased = self.store.swap_in(staging.snapshot_id, staging.seq, part.roster_hash)
        if erased is None:
            log.error("snapshot at seq %d does not hash as the server said; keeping the current roster", staging.seq)
            return Outcome(resync=True, note="hash mismatch")
        log.info("snapshot at seq %d swapped in", staging.seq)
        return Outcome(applied=True, ack=True, note="snapshot", full=True)

    def handle_receipt(self, topic: str, payload: bytes) -> Receipt | None:
        """Verify and parse a receipt; the caller purges what it names."""
        body = self._open(topic, payload)
        if body is None:
            return None
        try:
            receipt = decode(Receipt, body)
        except MessageError as exc:
            log.warning("dropped receipt: %s", exc)
            return None
        if receipt.terminal != self.terminal_id:
            log.warning("dropped receipt addressed to %s", receipt.terminal)
            return None
        return receipt


class FaceHold:
    """Whether faces may be matched: held from start and from each connect until the server confirms sync.

    Each connection has a nonce its births carry. The hold ends when the server's InSync echoes it, the store
    has applied up to its seq and no multi-part message is half-way; or, so that doors still decide offline,
    after `wait_s` without an answer or any sync progress. Owned by the terminal's loop.
    """

    def __init__(self, wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_s = wait_s
        self._clock = clock
        self.nonce: str | None = None
        self.since: float | None = clock()  # when the hold began; None once released
        self._waiting_from = self.since
        self._confirmed: int | None = None  # seq of this connection's latest InSync

    @property
    def held(self) -> bool:
        """Whether face matching waits."""
        return self.since is not None

    def held_for(self) -> float:
        """Seconds the current hold has lasted (0 when released)."""
        return 0.0 if self.since is None else self._clock() - self.since

    def connected(self) -> str:
        """A new broker connection: hold again; returns the nonce this connection's births carry."""
        now = self._clock()
        self.nonce = secrets.token_hex(16)
        self._confirmed = None
        self._waiting_from = now
        if self.since is None:
            self.since = now
        return self.nonce

    def confirm(self, message: InSync, applied_seq: int, busy: bool) -> bool:
        """Take the server's InSync; True if it answers this connection yet something it vouches for is missing."""
        if message.nonce != self.nonce:
            log.debug("ignored an InSync answering an earlier connection")
            return False
        self._confirmed = message.seq
        if busy or applied_seq < message.seq:
            log.warning(
                "the server sent up to seq %d but this terminal has applied %d; asking again", message.seq, applied_seq
            )
            return True
        return False

    def settle(self, applied_seq: int, busy: bool) -> bool:
        """Release the hold if this connection's InSync is now satisfied; True if released by this call."""
        if self.since is None or self._confirmed is None or busy or applied_seq < self._confirmed:
            return False
        log.info("in sync with the server at seq %d after %.1f s", applied_seq, self.held_for())
        self.since = None
        return True

    def expire(self, last_progress: float, applied_seq: int) -> bool:
        """Release the hold after `wait_s` with neither an answer nor sync progress; True if released by this call."""
        if self.since is None or self._clock() - max(self._waiting_from, last_progress) < self.wait_s:
            return False
        log.warning(
            "no answer from the server for %.0f s; matching faces on the roster held since seq %d",
            self.wait_s,
            applied_seq,
        )
        self.since = None
        return True
