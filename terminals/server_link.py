"""The terminal's MQTT connection to the server: its topics, what it publishes, and callbacks that only enqueue.

paho calls back on its own network thread; each callback only hands the loop a Connected, Disconnected or
Incoming event, and everything else (what to subscribe, what to send) is the loop thread's call. Every
message the terminal sends is QoS 1 and not retained, except its own availability (retained, with an
`offline` last will for a crash) and its doors' states (retained, sent again on every connect).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from gatehouse_core.mqtt_client import Will, make_client
from gatehouse_core.wire.topics import STATUS_OFFLINE, STATUS_ONLINE, Channel, server_status, terminal_topic
from terminals.config import TerminalConfig


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


LinkEvent = Connected | Disconnected | Incoming


class ServerLink:
    """One terminal's broker client; the loop thread starts it, says when it is online, publishes and closes it."""

    def __init__(self, config: TerminalConfig, enqueue: Callable[[LinkEvent], None]) -> None:
        self.config = config
        self._enqueue = enqueue
        self.topic = {ch: terminal_topic(config.site, config.terminal_id, ch) for ch in Channel}
        self._client = make_client(
            f"terminal-{config.terminal_id}",
            config.mqtt,
            username=config.terminal_id,
            will=Will(self.topic[Channel.STATUS], STATUS_OFFLINE),
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # paho callbacks (network thread): enqueue only.
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self._enqueue(Connected())
        else:
            self._enqueue(Disconnected(str(reason)))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._enqueue(Disconnected(str(reason)))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._enqueue(Incoming(message.topic, bytes(message.payload), bool(message.retain)))

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself until `close`."""
        mq = self.config.mqtt
        self._client.connect_async(mq.host, mq.port, keepalive=mq.keepalive)
        self._client.loop_start()

    def online(self) -> None:
        """On each connect: take the server's messages for this terminal, and say it is online (retained)."""
        self._client.subscribe(
            [
                (self.topic[Channel.SYNC], 1),
                (self.topic[Channel.COMMAND], 1),
                (self.topic[Channel.RECEIPT], 1),
                (server_status(), 1),
            ]
        )
        self._client.publish(self.topic[Channel.STATUS], STATUS_ONLINE, qos=1, retain=True)

    def publish(self, channel: Channel, body: bytes) -> None:
        """Send a message on one of this terminal's channels (QoS 1, never retained)."""
        self._client.publish(self.topic[channel], body, qos=1, retain=False)

    def publish_retained(self, channel: Channel, body: bytes) -> None:
        """Send a state whose latest copy the broker keeps for every later subscriber (QoS 1, retained)."""
        self._client.publish(self.topic[channel], body, qos=1, retain=True)

    def close(self, *, say_offline: bool) -> None:
        """Disconnect; a clean stop while online announces offline itself (the last will covers crashes)."""
        if say_offline:
            info = self._client.publish(self.topic[Channel.STATUS], STATUS_OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError):
                info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()
