"""The worker: a process of its own that holds the server's MQTT client (web workers never do).

It ingests terminal availability and birth messages now; the sync publisher and event ingest
join it with the sync issue. MQTT callbacks only enqueue; one loop does all database work.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask

from gatehouse_core.mqtt_client import Will, make_client
from gatehouse_core.wire.messages import Birth, MessageError, decode
from gatehouse_core.wire.topics import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Channel,
    TopicError,
    TopicRef,
    all_terminals,
    parse_topic,
    server_status,
)

from .extensions import db
from .services import terminals
from .services.errors import NotFound

log = logging.getLogger(__name__)

_SUBSCRIPTIONS = (Channel.STATUS, Channel.BIRTH)


class Worker:
    """Runs until `stop` is set; reconnects to the broker by itself."""

    def __init__(self, app: Flask, stop: threading.Event | None = None) -> None:
        self.app = app
        self.stop_event = stop or threading.Event()
        self.config = app.extensions["gatehouse"].config
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._client = make_client(
            f"gatehouse-worker-{socket.gethostname()}",
            self.config.mqtt,
            will=Will(server_status(), STATUS_OFFLINE),
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._handlers: dict[Channel, Callable[[TopicRef, bytes], None]] = {
            Channel.STATUS: self._handle_status,
            Channel.BIRTH: self._handle_birth,
        }
        self.connected = threading.Event()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the worker: %s", reason)
            return
        client.subscribe([(all_terminals(ch), 1) for ch in _SUBSCRIPTIONS])
        # Terminals answer a retained "online" with a fresh birth message, so none is missed.
        client.publish(server_status(), STATUS_ONLINE, qos=1, retain=True)
        self.connected.set()
        log.info("worker connected to %s:%d", self.config.mqtt.host, self.config.mqtt.port)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((message.topic, bytes(message.payload)))

    def run(self) -> None:
        """Connect and process messages until stopped."""
        mq = self.config.mqtt
        self._client.connect_async(mq.host, mq.port, keepalive=mq.keepalive)
        self._client.loop_start()
        try:
            while not self.stop_event.is_set():
                try:
                    topic, payload = self._inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.dispatch(topic, payload)
        finally:
            if self.connected.is_set():
                self._client.publish(server_status(), STATUS_OFFLINE, qos=1, retain=True).wait_for_publish(2)
            self._client.disconnect()
            self._client.loop_stop()
            with self.app.app_context():
                db.engine.dispose()

    def dispatch(self, topic: str, payload: bytes) -> None:
        """Route one message to its handler; invalid or unknown messages are logged and dropped."""
        try:
            ref = parse_topic(topic)
        except TopicError as exc:
            log.warning("dropped message: %s", exc)
            return
        handler = self._handlers.get(ref.channel)
        if handler is None:
            log.warning("dropped message on %s: the worker does not take this channel", topic)
            return
        with self.app.app_context():
            try:
                handler(ref, payload)
                db.session.commit()
            except (MessageError, NotFound) as exc:
                db.session.rollback()
                log.warning("dropped message on %s: %s", topic, exc)
            except Exception:
                db.session.rollback()
                log.exception("failed to handle message on %s", topic)

    def _handle_status(self, ref: TopicRef, payload: bytes) -> None:
        if payload not in (STATUS_ONLINE, STATUS_OFFLINE):
            raise MessageError("status payload must be 'online' or 'offline'")
        terminals.record_status(db.session, ref.site, ref.terminal, online=payload == STATUS_ONLINE)

    def _handle_birth(self, ref: TopicRef, payload: bytes) -> None:
        birth = decode(Birth, payload)
        if birth.terminal != ref.terminal:
            raise MessageError("birth message names another terminal than its topic")
        terminals.record_birth(db.session, ref.site, birth)
