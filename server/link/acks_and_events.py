"""Terminals' acks and event batches, stored a round at a time, and the receipts that answer them.

The worker collects a round's acks and events and hands them here: one transaction for all of them, and if
that fails, one per message, so one bad message does not hold back everybody else's. What was stored (and
what was refused for good) comes back as receipts for the worker to publish.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

from gatehouse_core.wire.messages import Ack, Erased, EventBatch
from gatehouse_core.wire.topics import TopicRef
from server.link import event_ingest as events
from server.models import Terminal
from server.services.errors import NotFound
from server.services.session import DbSession
from server.services.terminals import terminals

log = logging.getLogger(__name__)

_SENDER_TTL = 30.0  # seconds a cached terminal (doors served) is trusted


class Receipts:
    """What to confirm to each terminal: settled events, refused events, recorded erasures."""

    def __init__(self) -> None:
        self.by_terminal: dict[tuple[str, str], tuple[list[str], list[str], list[Erased]]] = defaultdict(
            lambda: ([], [], [])
        )

    def of(self, ref: TopicRef) -> tuple[list[str], list[str], list[Erased]]:
        """The lists for one terminal."""
        return self.by_terminal[(ref.site, ref.terminal)]

    def merge(self, other: Receipts) -> None:
        """Add another round's receipts."""
        for key, (settled, rejected, erased) in other.by_terminal.items():
            mine = self.by_terminal[key]
            mine[0].extend(settled)
            mine[1].extend(rejected)
            mine[2].extend(erased)


class AckEventStore:
    """Stores rounds of acks and events; remembers each sending terminal (and its doors) for a while."""

    def __init__(self) -> None:
        self._senders: dict[tuple[str, str], tuple[float, events.Sender | None]] = {}

    def store(self, session: DbSession, messages: Sequence[tuple[TopicRef, Ack | EventBatch]]) -> Receipts:
        """Store a round in one transaction; if that fails, message by message. Commits as it goes."""
        receipts = self._store(session, messages)
        if receipts is not None:
            return receipts
        # One bad message must not hold back everybody else's: retry each on its own.
        receipts = Receipts()
        for message in messages:
            one = self._store(session, [message])
            if one is None:
                log.error("dropped a %s message from %s that cannot be stored", message[1].type, message[0].terminal)
            else:
                receipts.merge(one)
        return receipts

    def _store(self, session: DbSession, messages: Sequence[tuple[TopicRef, Ack | EventBatch]]) -> Receipts | None:
        receipts = Receipts()
        try:
            for ref, message in messages:
                if isinstance(message, Ack):
                    sender = self._sender(session, ref)
                    terminal = session.get(Terminal, sender.terminal_id) if sender is not None else None
                    if terminal is None:
                        log.warning("dropped ack from unknown terminal %s", ref.terminal)
                        continue
                    receipts.of(ref)[2].extend(terminals.record_ack(session, terminal, message))
                else:
                    sender = self._sender(session, ref, {e.door for e in message.events})
                    if sender is None:
                        log.warning("dropped events from unknown terminal %s", ref.terminal)
                        continue
                    result = events.ingest(session, [(sender, list(message.events))])
                    receipts.of(ref)[0].extend(result.settled)
                    receipts.of(ref)[1].extend(result.rejected)
            session.commit()
        except Exception:
            session.rollback()
            log.exception("failed to store acks and events")
            return None
        return receipts

    def _sender(self, session: DbSession, ref: TopicRef, doors: Iterable[int] = ()) -> events.Sender | None:
        """The terminal behind a topic, cached; looked up again when it names a door it did not serve."""
        key = (ref.site, ref.terminal)
        now = time.monotonic()
        cached = self._senders.get(key)
        fresh = cached is not None and now - cached[0] < _SENDER_TTL
        if fresh and cached is not None and cached[1] is not None and not set(doors) <= cached[1].doors:
            fresh = now - cached[0] < 1.0
        if not fresh:
            try:
                cached = (now, events.sender_of(session, terminals.find_terminal(session, ref.site, ref.terminal)))
            except NotFound:
                cached = (now, None)
            self._senders[key] = cached
        return cached[1] if cached is not None else None
