"""Commands from the server at the terminal: open a door, resync, capture the next card; all else is dropped.

A command is acted on only if it is signed by the pinned server key for this terminal's own command topic,
names this site and terminal, has not expired by the terminal's clock, and its ref has not been acted on
before (refs are remembered, across restarts, until they expire). A broker that kept a command for an
offline terminal therefore delivers nothing it will act on once the command's time has passed.

While a card capture is armed, the next card read at any of this terminal's readers is not decided: it
opens nothing, records no event, and its UID goes to the server in the reply, which enrolls it. Owned by the
terminal's loop thread, like everything the loop holds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatehouse_core.credential_hash import CredentialFormatError, normalize_card_uid
from gatehouse_core.wire.base import MAX_MESSAGE_BYTES, MessageError, decode, encode
from gatehouse_core.wire.messages import (
    Command,
    CommandOp,
    CommandOutcome,
    CommandReply,
    Decision,
    EntryMethod,
    EventRecord,
)
from gatehouse_core.wire.signing import SignatureError, verify
from terminals.doors import DoorController
from terminals.inputs import CardPresented, Presentation
from terminals.store import TerminalStore

log = logging.getLogger(__name__)

REMOTE_OPEN = "remote_open"  # the event reason of a door opened from the console
CAPTURED_MESSAGE = "Card read. Thank you."  # what the door shows instead of a decision
_SEEN_STATE = "command_refs"

# Publishes an encoded CommandReply on this terminal's reply topic.
Reply = Callable[[bytes], None]


@dataclass(frozen=True)
class _Capture:
    ref: str
    expires_at: datetime


class RemoteCommands:
    """Verifies and carries out server commands; the runtime hands it messages, presentations and ticks."""

    def __init__(
        self,
        store: TerminalStore,
        server_key: Ed25519PublicKey,
        site: str,
        terminal_id: str,
        *,
        doors: DoorController,
        served: Callable[[], Collection[int]],
        reply: Reply,
        resync: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.server_key = server_key
        self.site = site
        self.terminal_id = terminal_id
        self.doors = doors
        self._served = served
        self._reply = reply
        self._resync = resync
        self._clock = clock
        self.capture: _Capture | None = None
        self._seen = self._load_seen()

    # ---- receiving -----------------------------------------------------------------------------------------

    def _load_seen(self) -> dict[str, float]:
        try:
            seen = json.loads(self.store.state(_SEEN_STATE) or "{}")
        except ValueError:
            return {}
        return {str(k): float(v) for k, v in seen.items()} if isinstance(seen, dict) else {}

    def _remember(self, command: Command, now: datetime) -> None:
        # A ref is kept until its command expires; after that the expiry alone refuses a replay.
        self._seen = {ref: until for ref, until in self._seen.items() if until > now.timestamp()}
        self._seen[command.ref] = command.expires_at.timestamp()
        self.store.set_state(_SEEN_STATE, json.dumps(self._seen))

    def accept(self, topic: str, payload: bytes) -> Command | None:
        """The command in a message, if it is genuine, for this terminal, in time and new; else None (logged)."""
        if len(payload) > MAX_MESSAGE_BYTES + 68:
            log.warning("dropped oversized message on %s", topic)
            return None
        try:
            command = decode(Command, verify(self.server_key, topic, payload))
        except (SignatureError, MessageError) as exc:
            log.warning("dropped command: %s", exc)
            return None
        now = self._clock()
        if command.site != self.site or command.terminal != self.terminal_id:
            log.warning("dropped command addressed to %s/%s", command.site, command.terminal)
            return None
        if command.expires_at <= now:
            log.warning("dropped %s command that expired %s", command.op.value, command.expires_at.isoformat())
            return None
        if command.ref in self._seen:
            log.warning("dropped replayed %s command", command.op.value)
            return None
        self._remember(command, now)
        return command

    def handle(self, topic: str, payload: bytes) -> bool:
        """Act on one message from the command topic; True if an access event went into the outbox."""
        command = self.accept(topic, payload)
        if command is None:
            return False
        if command.op is CommandOp.OPEN_DOOR:
            return self._open(command)
        if command.op is CommandOp.RESYNC:
            log.warning("the server asked for a roster check; announcing again")
            self._resync()
            self._answer(command.ref, CommandOutcome.RESYNCING)
            return False
        if self.capture is not None:
            self._answer(self.capture.ref, CommandOutcome.SUPERSEDED)
        self.capture = _Capture(command.ref, command.expires_at)
        log.warning("the next card read here is enrolled, not decided (until %s)", command.expires_at.isoformat())
        return False

    def _open(self, command: Command) -> bool:
        door = command.door
        if door is None or door not in self._served():
            log.warning("the server asked to open door %s, which this terminal does not serve", door)
            self._answer(command.ref, CommandOutcome.NO_SUCH_DOOR)
            return False
        # Exactly as a grant: the pulse, then the event through the outbox.
        self.doors.open(door, time.monotonic())
        event = EventRecord(
            uid=str(uuid.uuid4()),
            door=door,
            method=EntryMethod.REMOTE,
            decision=Decision.GRANT,
            reason=REMOTE_OPEN,
            at=self._clock(),
        )
        self.store.record_decision(event)
        log.info("door %d: opened remotely", door)
        self._answer(command.ref, CommandOutcome.OPENED)
        return True

    def _answer(self, ref: str, outcome: CommandOutcome, uid: str | None = None) -> None:
        self._reply(encode(CommandReply(terminal=self.terminal_id, ref=ref, outcome=outcome, uid=uid)))

    # ---- the armed card capture ----------------------------------------------------------------------------

    def take(self, presentation: Presentation) -> dict[str, Any] | None:
        """If a capture is armed and this is a card, capture it: what the door shows; else None (decide it)."""
        capture = self.capture
        if capture is None or not isinstance(presentation, CardPresented):
            return None
        if capture.expires_at <= self._clock():
            self.tick()
            return None
        self.capture = None
        try:
            uid = normalize_card_uid(presentation.uid)
        except CredentialFormatError:
            log.warning("door %d: a card was read for enrolment, but its UID is not a card's", presentation.door)
            self._answer(capture.ref, CommandOutcome.BAD_UID)
        else:
            log.info("door %d: a card was read for enrolment", presentation.door)
            self._answer(capture.ref, CommandOutcome.CAPTURED, uid)
        return {"door": presentation.door, "granted": False, "captured": True, "message": CAPTURED_MESSAGE}

    def tick(self) -> None:
        """End an armed capture whose time has passed."""
        if self.capture is not None and self.capture.expires_at <= self._clock():
            log.info("no card was read for enrolment in time")
            ref, self.capture = self.capture.ref, None
            self._answer(ref, CommandOutcome.TIMEOUT)
