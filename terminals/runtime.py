"""The terminal's main loop: one thread owns all state; MQTT and driver callbacks only enqueue events."""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from gatehouse_core import __version__
from gatehouse_core.keyring import load_public_key
from gatehouse_core.mqtt_client import Will, make_client
from gatehouse_core.wire.messages import Birth, encode
from gatehouse_core.wire.topics import STATUS_OFFLINE, STATUS_ONLINE, Channel, server_status, terminal_topic

from .config import TerminalConfig
from .store import TerminalStore

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


Event = Connected | Disconnected | Incoming


class TerminalRuntime:
    """A door terminal process: connects, announces itself, applies sync and decides entries offline."""

    def __init__(self, config: TerminalConfig, stop: threading.Event | None = None) -> None:
        self.config = config
        self.stop_event = stop or threading.Event()
        self.state = LinkState.STARTING
        self._events: queue.Queue[Event] = queue.Queue()
        # Fail at start, not at the first sync message, if the pinned key is unusable.
        self.server_key = load_public_key(config.server_public_key)
        self.store = TerminalStore(config.data_dir / "terminal.db")
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
        self._events.put(Incoming(message.topic, bytes(message.payload)))

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
                    event = self._events.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._handle(event)
        finally:
            self._shutdown()

    def _handle(self, event: Event) -> None:
        if isinstance(event, Connected):
            self._client.subscribe(
                [(self._topic[Channel.SYNC], 1), (self._topic[Channel.COMMAND], 1), (server_status(), 1)]
            )
            self._client.publish(self._topic[Channel.STATUS], STATUS_ONLINE, qos=1, retain=True)
            self._announce()
            self.state = LinkState.ONLINE
            log.info("terminal %s online", self.config.terminal_id)
        elif isinstance(event, Disconnected):
            if self.state is LinkState.ONLINE:
                log.warning("terminal %s lost the broker (%s); deciding offline", self.config.terminal_id, event.reason)
            self.state = LinkState.OFFLINE
        elif isinstance(event, Incoming):
            if event.topic == server_status():
                if event.payload == STATUS_ONLINE:
                    self._announce()
                return
            # Sync and commands arrive with the sync issue; until then nothing unsigned is ever applied.
            log.debug("ignoring message on %s (%d bytes)", event.topic, len(event.payload))

    def _announce(self) -> None:
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
