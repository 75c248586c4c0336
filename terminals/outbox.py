"""Access events on their way to the server: sent in batches, kept until its receipt names them, sent again if not.

The store's outbox holds the events durably; this keeps which are in flight (and since when), so a batch
without a receipt is sent again after a while and a reconnect sends everything unreceipted again. Owned
by the terminal's loop thread.
"""

from __future__ import annotations

from collections.abc import Callable

from gatehouse_core.wire.messages import EventBatch, Receipt, encode
from terminals.store import TerminalStore

EVENT_BATCH = 500  # events per message
EVENT_RESEND_AFTER = 10.0  # seconds without a receipt before an event is sent again
EVENT_IN_FLIGHT = 2000  # events sent and awaiting a receipt, at most


class EventOutbox:
    """Delivers the store's events in batches and forgets them once the server's receipt settles them."""

    def __init__(self, store: TerminalStore, terminal_id: str) -> None:
        self.store = store
        self.terminal_id = terminal_id
        self._in_flight: dict[str, float] = {}
        # Whether the outbox may hold events not yet in flight (it may after a restart).
        self._unsent = True

    def added(self) -> None:
        """Events went into the store's outbox."""
        self._unsent = True

    def resend_all(self) -> None:
        """Forget what is in flight: after a reconnect, or a restarted worker, everything unreceipted goes again."""
        self._in_flight.clear()
        self._unsent = True

    def settle(self, receipt: Receipt) -> None:
        """Purge the events (stored or refused for good) and the erasure acknowledgements a receipt names."""
        settled = (*receipt.events, *receipt.rejected)
        self.store.purge_events(settled)
        self.store.purge_erasures(receipt.erasures)
        for uid in settled:
            self._in_flight.pop(uid, None)

    def deliver(self, now: float, publish: Callable[[bytes], None]) -> None:
        """Send the next batch, if there is room in flight; events unreceipted for too long count as unsent."""
        expired = [uid for uid, sent in self._in_flight.items() if now - sent > EVENT_RESEND_AFTER]
        for uid in expired:
            del self._in_flight[uid]
        self._unsent = self._unsent or bool(expired)
        room = min(EVENT_BATCH, EVENT_IN_FLIGHT - len(self._in_flight))
        # Reading the outbox every tick would cost the loop for nothing when all of it is in flight.
        if room <= 0 or not self._unsent:
            return
        pending = self.store.pending_events(room, exclude=self._in_flight)
        self._unsent = len(pending) == room
        if not pending:
            return
        publish(encode(EventBatch(terminal=self.terminal_id, events=tuple(pending))))
        for event in pending:
            self._in_flight[event.uid] = now
