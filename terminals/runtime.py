"""The terminal's main loop: one thread owns all state; MQTT and driver callbacks only enqueue events.

The loop applies signed sync messages, acknowledges what it applied (with each erasure), delivers
access events from its outbox until the server's receipt names them, and asks again (birth) whenever it
notices a gap. Doors keep deciding from the local store whatever the link does.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from gatehouse_core import __version__
from gatehouse_core.keyring import load_public_key, load_seal_key
from gatehouse_core.mqtt_client import Will, make_client
from gatehouse_core.wire.messages import Ack, Birth, EventBatch, EventRecord, encode
from gatehouse_core.wire.topics import STATUS_OFFLINE, STATUS_ONLINE, Channel, server_status, terminal_topic

from .config import TerminalConfig
from .store import TerminalStore
from .sync_apply import SyncApplier

log = logging.getLogger(__name__)


class LinkState(enum.Enum):
    """State of the terminal's link to the server; doors keep working in every state."""

    STARTING = "starting"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Connected:
    """The broker accepted the connection."""


@dataclass(frozen=True)
class Disconnected:
    """The broker connection dropped (paho reconnects with backoff)."""

    reason: str


@dataclass(frozen=True)
class Incoming:
    """A message on one of this terminal's topics."""

    topic: str
    payload: bytes
    retained: bool = False


@dataclass(frozen=True)
class NewEvents:
    """Access decisions made at the door, for the outbox."""

    events: tuple[EventRecord, ...]


Event = Connected | Disconnected | Incoming | NewEvents

EVENT_BATCH = 500  # events per message
EVENT_RESEND_AFTER = 10.0  # seconds without a receipt before an event is sent again
EVENT_IN_FLIGHT = 2000  # events sent and awaiting a receipt, at most
RESYNC_MIN_INTERVAL = 2.0  # seconds between births asking for missing changes
SYNC_STALL_TIMEOUT = 30.0  # seconds a half-received delta or snapshot may wait for its next part


class TerminalRuntime:
    """A door terminal process: connects, announces itself, applies sync and decides entries offline."""

    def __init__(self, config: TerminalConfig, stop: threading.Event | None = None) -> None:
        self.config = config
        self.stop_event = stop or threading.Event()
        self.state = LinkState.STARTING
        self._events: queue.Queue[Event] = queue.Queue()
        # Fail at start, not at the first sync message, if the pinned key or the seal key is unusable.
        self.server_key = load_public_key(config.server_public_key)
        self.seal_key = load_seal_key(config.seal_key_file)
        self.store = TerminalStore(config.data_dir / "terminal.db")
        self.sync = SyncApplier(self.store, self.server_key, config.site, config.terminal_id)
        self._in_flight: dict[str, float] = {}
        # Whether the outbox may hold events not yet in flight (it may after a restart).
        self._unsent = True
        self._last_birth = 0.0
        self._resync_wanted = False
        self._verify_after_catch_up = False
        self._topic = {ch: terminal_topic(config.site, config.terminal_id, ch) for ch in Channel}
        self._client = make_client(
            f"terminal-{config.terminal_id}",
            config.mqtt,
            username=config.terminal_id,
            will=Will(self._topic[Channel.STATUS], STATUS_OFFLINE),
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # paho callbacks (network thread): enqueue only.
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self._events.put(Connected())
        else:
            self._events.put(Disconnected(str(reason)))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._events.put(Disconnected(str(reason)))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._events.put(Incoming(message.topic, bytes(message.payload), bool(message.retain)))

    def submit_events(self, events: tuple[EventRecord, ...]) -> None:
        """Queue access events for the outbox (safe from any thread)."""
        self._events.put(NewEvents(events))

    def run(self) -> None:
        """Run until the stop event is set."""
        self.state = LinkState.CONNECTING
        self._client.connect_async(self.config.mqtt.host, self.config.mqtt.port, keepalive=self.config.mqtt.keepalive)
        self._client.loop_start()
        log.info(
            "terminal %s started; connecting to %s:%d",
            self.config.terminal_id,
            self.config.mqtt.host,
            self.config.mqtt.port,
        )
        try:
            while not self.stop_event.is_set():
                try:
                    event = self._events.get(timeout=0.05)
                except queue.Empty:
                    event = None
                if event is not None:
                    self._handle(event)
                self._tick()
        finally:
            self._shutdown()

    def _handle(self, event: Event) -> None:
        if isinstance(event, Connected):
            self._client.subscribe(
                [
                    (self._topic[Channel.SYNC], 1),
                    (self._topic[Channel.COMMAND], 1),
                    (self._topic[Channel.RECEIPT], 1),
                    (server_status(), 1),
                ]
            )
            self._client.publish(self._topic[Channel.STATUS], STATUS_ONLINE, qos=1, retain=True)
            self.state = LinkState.ONLINE
            self._resend_all()
            self._announce()
            if self.store.pending_erasures():
                self._ack()
            log.info("terminal %s online", self.config.terminal_id)
        elif isinstance(event, Disconnected):
            if self.state is LinkState.ONLINE:
                log.warning("terminal %s lost the broker (%s); deciding offline", self.config.terminal_id, event.reason)
            self.state = LinkState.OFFLINE
        elif isinstance(event, NewEvents):
            self.store.add_events(event.events)
            self._unsent = True
        elif event.topic == self._topic[Channel.SYNC]:
            self._on_sync(event.payload)
        elif event.topic == self._topic[Channel.RECEIPT]:
            receipt = self.sync.handle_receipt(event.topic, event.payload)
            if receipt is not None:
                settled = (*receipt.events, *receipt.rejected)
                self.store.purge_events(settled)
                self.store.purge_erasures(receipt.erasures)
                for uid in settled:
                    self._in_flight.pop(uid, None)
        elif event.topic == server_status():
            # The retained copy arrives right after our own connect-time announcement; only a live
            # "online" means a (re)started worker that has not heard us yet.
            if event.payload == STATUS_ONLINE and self.state is LinkState.ONLINE and not event.retained:
                # A restarted worker: announce again and send anything unreceipted again.
                self._resend_all()
                self._announce()
        else:
            # Commands (remote open) come with the door-control issue; nothing unverified is acted on.
            log.debug("ignoring message on %s (%d bytes)", event.topic, len(event.payload))

    def _on_sync(self, payload: bytes) -> None:
        outcome = self.sync.handle_sync(self._topic[Channel.SYNC], payload)
        if outcome.ack:
            self._ack()
        if outcome.resync:
            self._resync_wanted = True
        if outcome.applied and not self.sync.busy() and self._verify_after_catch_up:
            # A catch-up is complete: announce once more so the server can compare roster hashes.
            self._verify_after_catch_up = False
            self._announce(verify=True)

    def _ack(self) -> None:
        if self.state is not LinkState.ONLINE:
            return
        ack = Ack(
            terminal=self.config.terminal_id,
            applied_seq=self.store.applied_seq(),
            erased=tuple(self.store.pending_erasures()[:1000]),
        )
        self._client.publish(self._topic[Channel.ACK], encode(ack), qos=1)

    def _tick(self) -> None:
        now = time.monotonic()
        if self.sync.busy() and now - self.sync.last_progress > SYNC_STALL_TIMEOUT:
            self.sync.abandon("no next part within the timeout")
            self._resync_wanted = True
        if self.state is not LinkState.ONLINE:
            return
        if self._resync_wanted and now - self._last_birth >= RESYNC_MIN_INTERVAL:
            self._resync_wanted = False
            self._announce()
        self._deliver_events(now)

    def _resend_all(self) -> None:
        self._in_flight.clear()
        self._unsent = True

    def _deliver_events(self, now: float) -> None:
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
        batch = EventBatch(terminal=self.config.terminal_id, events=tuple(pending))
        self._client.publish(self._topic[Channel.EVENTS], encode(batch), qos=1)
        for event in pending:
            self._in_flight[event.uid] = now

    def _announce(self, verify: bool = False) -> None:
        self._last_birth = time.monotonic()
        # The answer to a plain announcement may be a catch-up; once applied, announce again to verify it.
        self._verify_after_catch_up = not verify
        self._client.publish(self._topic[Channel.BIRTH], encode(self._birth()), qos=1)

    def _birth(self) -> Birth:
        return Birth(
            terminal=self.config.terminal_id,
            applied_seq=self.store.applied_seq(),
            roster_hash=self.store.roster_hash(),
            software=f"gatehouse-terminal/{__version__}",
        )

    def _shutdown(self) -> None:
        if self.state is LinkState.ONLINE:
            # A clean stop announces offline itself; the last will covers crashes.
            info = self._client.publish(self._topic[Channel.STATUS], STATUS_OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError):
                info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()
        self.store.close()
        self.state = LinkState.STOPPED
        log.info("terminal %s stopped", self.config.terminal_id)
