"""The worker: a process of its own that holds the server's MQTT client (web workers never do).

It publishes the journal to terminals, answers their birth messages, records their acknowledgements
and erasure confirmations, stores their access events exactly once (their alarm events raising alarms),
records their doors' live states, alarms on terminals silent too long, and sends the console's terminal
commands (recording the replies); a thread of its own delivers webhooks. MQTT callbacks only enqueue;
one loop thread does all database work and all publishing, so each terminal sees messages in order.
Messages are routed by their topic's channel through one table (`Worker.handlers`). Snapshots go out a
few parts per loop turn (server/link/snapshots.py), so one terminal's snapshot never holds back another
terminal's revocations.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask

from gatehouse_core.mqtt_client import Will, make_client
from gatehouse_core.wire.messages import Ack, Birth, CommandReply, DoorStates, EventBatch, MessageError, decode
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
from server.extensions import db
from server.link.acks_and_events import AckEventStore
from server.link.command_sender import CommandSender
from server.link.publisher import Delivery, SyncPublisher
from server.link.snapshots import ALARM_QUIET
from server.link.webhook_sender import WebhookSender
from server.services import journal
from server.services.errors import NotFound
from server.services.operations import alarms as operations_alarms
from server.services.operations import door_states, offline
from server.services.privacy import alarms, retention
from server.services.terminals import terminals
from server.services.visitors import passes
from server.state import Gatehouse

log = logging.getLogger(__name__)

_BATCH = 2000  # messages handled per database transaction, at most
_PRUNE_EVERY = 3600.0
_OFFLINE_EVERY = 60.0  # seconds between checks for terminals silent past their site's bound
_REPEAT_WINDOW = 1.0  # seconds in which an identical birth is answered once (terminals resync after 2 s)


@dataclass
class _Round:
    """A batch's acks, events and replies, collected while it is routed and stored together after it."""

    acks: list[tuple[TopicRef, Ack]] = field(default_factory=list)
    event_batches: list[tuple[TopicRef, EventBatch]] = field(default_factory=list)
    replies: list[tuple[TopicRef, CommandReply]] = field(default_factory=list)


# Takes one message of a batch: handles it at once, or collects it into the round.
Handler = Callable[[_Round, TopicRef, bytes], None]


class Worker:
    """Runs until `stop` is set; reconnects to the broker by itself."""

    def __init__(self, app: Flask, stop: threading.Event | None = None) -> None:
        self.app = app
        self.stop_event = stop or threading.Event()
        gatehouse: Gatehouse = app.extensions["gatehouse"]
        self.config = gatehouse.config
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._client = make_client(
            f"gatehouse-worker-{socket.gethostname()}",
            self.config.mqtt,
            will=Will(server_status(), STATUS_OFFLINE),
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self.publisher = SyncPublisher(gatehouse.keys, self._publish)
        self.commands = CommandSender(gatehouse.keys, self._send_command)
        self.acks_and_events = AckEventStore()
        # Per terminal: applied sequence and roster hash of the last birth answered, when, and the answer's seq.
        self._answered: dict[str, tuple[int, str, float, int]] = {}
        self.connected = threading.Event()
        # The channels the worker takes (and subscribes to), each with its handler; any other is dropped.
        # Availability and births are handled one by one as they come; acks and events are stored in one
        # transaction after the batch, and command replies after them.
        self.handlers: dict[Channel, Handler] = {
            Channel.STATUS: self._handle_status,
            Channel.BIRTH: self._handle_birth,
            Channel.ACK: self._collect_ack,
            Channel.EVENTS: self._collect_events,
            Channel.REPLY: self._collect_reply,
            Channel.DOORS: self._handle_doors,
        }

    # ---- paho callbacks (network thread): enqueue only -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the worker: %s", reason)
            return
        client.subscribe([(all_terminals(ch), 1) for ch in self.handlers])
        # Terminals answer a retained "online" with a fresh birth message, so none is missed.
        client.publish(server_status(), STATUS_ONLINE, qos=1, retain=True)
        self.connected.set()
        log.info("worker connected to %s:%d", self.config.mqtt.host, self.config.mqtt.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        if not self.stop_event.is_set():
            log.warning("worker lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((message.topic, bytes(message.payload)))

    def _publish(self, topic: str, payload: bytes) -> Delivery:
        # Sync messages are commands to one terminal: never retained, QoS 1.
        return self._client.publish(topic, payload, qos=1, retain=False)

    def _send_command(self, topic: str, payload: bytes) -> bool:
        # A command is for now or never: not retained, and only handed over while connected.
        if not self.connected.is_set():
            return False
        return self._client.publish(topic, payload, qos=1, retain=False).rc == mqtt.MQTT_ERR_SUCCESS

    # ---- main loop -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Connect and work until stopped."""
        mq = self.config.mqtt
        self._client.connect_async(mq.host, mq.port, keepalive=mq.keepalive)
        self._client.loop_start()
        poll = self.config.sync.poll_interval_ms / 1000
        # Housekeeping jobs first run a minute after start, then each at its own interval.
        due = dict.fromkeys(("prune", "erasures", "retention", "offline"), time.monotonic() + 60)
        # Webhook deliveries wait on receivers (up to their timeout): a thread of their own, so no terminal waits.
        webhooks = threading.Thread(target=WebhookSender(self.app).run, args=(self.stop_event,), name="webhooks")
        webhooks.start()
        try:
            while not self.stop_event.is_set():
                # With snapshot parts to send, only look for messages; otherwise wait for them.
                streaming = self.connected.is_set() and self.publisher.snapshots.busy()
                batch = self._drain(0 if streaming else poll)
                if batch:
                    self.process(batch)
                if self.connected.is_set():
                    self._publish_pending()
                    self._advance_snapshots()
                self._send_commands()
                self._housekeeping(due)
        finally:
            if self.connected.is_set():
                self._client.publish(server_status(), STATUS_OFFLINE, qos=1, retain=True).wait_for_publish(2)
            self._client.disconnect()
            self._client.loop_stop()
            self.stop_event.set()
            webhooks.join(10)
            with self.app.app_context():
                db.engine.dispose()

    def _drain(self, timeout: float) -> list[tuple[str, bytes]]:
        try:
            batch = [self._inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < _BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _publish_pending(self) -> None:
        with self.app.app_context():
            try:
                while self.publisher.publish_pending(db.session):
                    pass
            except Exception:
                db.session.rollback()
                log.exception("publishing the journal failed; will retry")

    def _advance_snapshots(self) -> None:
        """One turn's worth of snapshot parts; pending journal ranges go out before the next turn's."""
        with self.app.app_context():
            try:
                self.publisher.advance_snapshots(db.session)
            except Exception:
                db.session.rollback()
                log.exception("sending a snapshot failed; the terminal will ask again")

    def _send_commands(self) -> None:
        with self.app.app_context():
            try:
                self.commands.publish_due(db.session)
            except Exception:
                db.session.rollback()
                log.exception("sending terminal commands failed; will retry")

    def _replies(self, replies: list[tuple[TopicRef, CommandReply]]) -> None:
        """Record command replies one by one: a card refused for one person must not hold back another's."""
        with self.app.app_context():
            for ref, reply in replies:
                try:
                    self.commands.record(db.session, ref.site, ref.terminal, reply)
                except Exception:
                    db.session.rollback()
                    log.exception("failed to record a command reply from %s", ref.terminal)

    def _housekeeping(self, due: dict[str, float]) -> None:
        """Run each housekeeping job whose time has come; `due` holds when each is next due (monotonic)."""
        settings = self.config.retention
        jobs = (
            ("prune", self._prune, _PRUNE_EVERY),
            ("erasures", self.check_erasures, settings.alarm_check_minutes * 60.0),
            ("retention", self.run_retention, settings.interval_minutes * 60.0),
            ("offline", self.check_offline, _OFFLINE_EVERY),
        )
        for name, job, every in jobs:
            if time.monotonic() >= due[name]:
                job()
                due[name] = time.monotonic() + every

    def check_erasures(self) -> None:
        """Raise alarms for erasures terminals have not confirmed in time; resolve those now complete."""
        with self.app.app_context():
            try:
                alarms.check_erasures(db.session)
                alarms.resolve_snapshot_budget(
                    db.session, self.publisher.snapshots.flooding(), timedelta(seconds=ALARM_QUIET)
                )
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("erasure alarm check failed; will retry")

    def check_offline(self) -> None:
        """Raise alarms for terminals silent past their site's bound; end keypad lockouts that are over."""
        with self.app.app_context():
            try:
                offline.check_offline(db.session)
                operations_alarms.end_lockouts(db.session)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("terminal offline check failed; will retry")

    def run_retention(self) -> None:
        """Apply every site's retention periods (commits as it goes; a large first purge blocks the loop a while)."""
        with self.app.app_context():
            try:
                report = retention.run_retention(
                    db.session, retention.ACTOR, chunk_rows=self.config.retention.chunk_rows
                )
            except Exception:
                db.session.rollback()
                log.exception("retention run failed; will retry")
                return
            for site in report.sites:
                if site.events or site.passes or site.templates:
                    log.info(
                        "retention at site %s: %d event(s), %d visitor pass(es), %d face template(s) removed",
                        site.site_code,
                        site.events,
                        site.passes,
                        site.templates,
                    )

    def _prune(self) -> None:
        with self.app.app_context():
            try:
                ended = passes.expire_passes(db.session)
                db.session.commit()
                if ended:
                    log.info("expired %d visitor pass(es) that have ended", ended)
                removed = journal.prune(db.session, timedelta(days=self.config.sync.journal_retention_days))
                db.session.commit()
                if removed:
                    log.info("pruned %d published journal entries", removed)
            except Exception:
                db.session.rollback()
                log.exception("housekeeping (pass expiry, journal pruning) failed")

    def dispatch(self, topic: str, payload: bytes) -> None:
        """Handle one message (tests and tools); the loop handles messages in batches."""
        self.process([(topic, payload)])

    def process(self, batch: list[tuple[str, bytes]]) -> None:
        """Handle a batch: each message by its channel's handler, then the acks, events and replies collected."""
        round_ = _Round()
        for topic, payload in batch:
            try:
                ref = parse_topic(topic)
                handler = self.handlers.get(ref.channel)
                if handler is None:
                    log.warning("dropped message on %s: the worker does not take this channel", topic)
                    continue
                handler(round_, ref, payload)
            except (TopicError, MessageError) as exc:
                log.warning("dropped message on %s: %s", topic, exc)
        if round_.acks or round_.event_batches:
            self._acks_and_events(round_.acks, round_.event_batches)
        if round_.replies:
            self._replies(round_.replies)

    def _collect_ack(self, round_: _Round, ref: TopicRef, payload: bytes) -> None:
        round_.acks.append((ref, self._parse(Ack, ref, payload)))

    def _collect_events(self, round_: _Round, ref: TopicRef, payload: bytes) -> None:
        round_.event_batches.append((ref, self._parse(EventBatch, ref, payload)))

    def _collect_reply(self, round_: _Round, ref: TopicRef, payload: bytes) -> None:
        round_.replies.append((ref, self._parse(CommandReply, ref, payload)))

    def _handle_status(self, round_: _Round, ref: TopicRef, payload: bytes) -> None:
        self._one(ref, lambda: self._status(ref, payload))

    def _handle_birth(self, round_: _Round, ref: TopicRef, payload: bytes) -> None:
        self._one(ref, lambda: self._birth(ref, payload))

    def _handle_doors(self, round_: _Round, ref: TopicRef, payload: bytes) -> None:
        self._one(ref, lambda: self._doors(ref, payload))

    @staticmethod
    def _parse(model: type[Ack] | type[EventBatch] | type[CommandReply], ref: TopicRef, payload: bytes) -> Any:
        message = decode(model, payload)
        if message.terminal != ref.terminal:
            raise MessageError(f"{model.__name__} names another terminal than its topic")
        return message

    def _one(self, ref: TopicRef, work: Callable[[], tuple[int, str] | None]) -> None:
        """Do one message's work in its own transaction; then confirm a birth's answer with an InSync if asked."""
        with self.app.app_context():
            try:
                confirm = work()
                db.session.commit()
                if confirm is not None and self.connected.is_set():
                    # Only after the commit, and after the answer's parts went to the client: MQTT keeps the
                    # topic in order, so the terminal sees this last and knows it has been sent everything.
                    self.publisher.send_in_sync(ref.site, ref.terminal, *confirm)
            except (MessageError, NotFound) as exc:
                db.session.rollback()
                log.warning("dropped message on %s/%s: %s", ref.terminal, ref.channel.value, exc)
            except Exception:
                db.session.rollback()
                log.exception("failed to handle %s message from %s", ref.channel.value, ref.terminal)

    @staticmethod
    def _status(ref: TopicRef, payload: bytes) -> None:
        """Record a terminal's availability (its retained status, or its last will)."""
        if payload not in (STATUS_ONLINE, STATUS_OFFLINE):
            raise MessageError("status payload must be 'online' or 'offline'")
        terminal = terminals.record_status(db.session, ref.site, ref.terminal, online=payload == STATUS_ONLINE)
        if payload == STATUS_ONLINE:
            offline.terminal_seen(db.session, terminal)

    @staticmethod
    def _doors(ref: TopicRef, payload: bytes) -> None:
        """Record a terminal's door states (retained: the worker gets each terminal's latest on connect)."""
        states = decode(DoorStates, payload)
        if states.terminal != ref.terminal:
            raise MessageError("door states name another terminal than their topic")
        door_states.apply(db.session, terminals.find_terminal(db.session, ref.site, ref.terminal), states)

    def _birth(self, ref: TopicRef, payload: bytes) -> tuple[int, str] | None:
        """Record and answer a birth; the sequence and nonce an InSync must confirm, if the birth asks for one."""
        birth = decode(Birth, payload)
        if birth.terminal != ref.terminal:
            raise MessageError("birth message names another terminal than its topic")
        terminal = terminals.record_birth(db.session, ref.site, birth)
        offline.terminal_seen(db.session, terminal)
        # Only a birth with a nonce can be left to the earlier answer: its InSync shows the terminal if that
        # answer was lost, and it asks again. Without one, every birth is answered.
        streaming = self.publisher.snapshots.in_flight(ref.site, ref.terminal) is not None
        repeated = self._repeated(ref, birth) if birth.nonce is not None and not streaming else None
        if repeated is not None:
            log.info("terminal %s repeated its birth; the answer is on its way", ref.terminal)
            seq = repeated
        elif self.connected.is_set():
            answer = self.publisher.answer_birth(db.session, terminal, birth)
            log.info("terminal %s at seq %d: answered with %s", ref.terminal, birth.applied_seq, answer.action)
            self._answered[ref.terminal] = (birth.applied_seq, birth.roster_hash, time.monotonic(), answer.seq)
            if answer.streamed:
                return None  # the snapshot's stream sends the InSync after its last part
            seq = answer.seq
        else:
            return None
        return None if birth.nonce is None else (seq, birth.nonce)

    def _repeated(self, ref: TopicRef, birth: Birth) -> int | None:
        """The seq answered for the same birth seconds ago (a terminal reconnecting twice), else None."""
        last = self._answered.get(ref.terminal)
        if (
            last is not None
            and last[:2] == (birth.applied_seq, birth.roster_hash)
            and time.monotonic() - last[2] < _REPEAT_WINDOW
        ):
            return last[3]
        return None

    def _acks_and_events(
        self, acks: list[tuple[TopicRef, Ack]], event_batches: list[tuple[TopicRef, EventBatch]]
    ) -> None:
        """Store a round of acks and events, then send each terminal its receipt."""
        with self.app.app_context():
            receipts = self.acks_and_events.store(db.session, [*acks, *event_batches])
        for (site, ident), (settled, rejected, erased) in receipts.by_terminal.items():
            if settled or rejected or erased:
                self.publisher.send_receipt(site, ident, settled, rejected, erased)
