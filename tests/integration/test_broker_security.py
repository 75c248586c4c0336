"""The broker files from `gatehouse broker files`, enforced by a real mosquitto: TLS, passwords, per-terminal ACLs."""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from gatehouse_core.configfile import parse_config
from gatehouse_core.configtypes import MqttConfig
from gatehouse_core.mqtt_client import make_client
from gatehouse_core.wire.topics import Channel, everything, server_status, terminal_topic
from server.extensions import db
from server.services.terminals.broker_credentials import generate_password
from server.services.terminals.terminals import provision_terminal
from tests.conftest import TEST_ACTOR
from tests.integration.conftest import SecureBroker, write_secret

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


class Peer:
    """An MQTT client under test that records the outcome of connecting, its SUBACKs and its messages."""

    def __init__(self, config: dict[str, Any], client_id: str | None = None) -> None:
        self.config = parse_config(MqttConfig, config)
        self.client = make_client(client_id or f"peer-{secrets.token_hex(4)}", self.config)
        # A refused client retries in the background; short waits let close() stop it promptly.
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=2)
        self.outcomes: queue.Queue[ReasonCode | str] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        self.dropped = threading.Event()
        self.client.on_connect = lambda c, u, flags, reason, props: self.outcomes.put(reason)
        self.client.on_connect_fail = lambda c, u: self.outcomes.put("connect failed")
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda c, u, mid, reasons, props: self.subacks.put(list(reasons))
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, bytes(msg.payload)))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.dropped.set()
        self.outcomes.put(f"disconnected: {reason}")

    def connect(self) -> ReasonCode | str:
        """Connect and return the first outcome: the CONNACK reason, or why there was none."""
        self.client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        self.client.loop_start()
        try:
            return self.outcomes.get(timeout=TIMEOUT)
        except queue.Empty:
            return "no answer"

    def connected(self) -> Peer:
        """Connect and insist on success."""
        outcome = self.connect()
        assert isinstance(outcome, ReasonCode) and not outcome.is_failure, outcome
        return self

    def subscribe(self, topic: str) -> ReasonCode:
        """Subscribe with QoS 1 and return the broker's SUBACK reason."""
        self.client.subscribe(topic, qos=1)
        (reason,) = self.subacks.get(timeout=TIMEOUT)
        return reason

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK (mosquitto acks denied MQTT 3.1.1 publishes too)."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(TIMEOUT)

    def wait_for(self, topic: str, payload: bytes) -> list[tuple[str, bytes]]:
        """Wait for one message; return everything received so far, in order."""
        deadline = time.monotonic() + TIMEOUT
        while (topic, payload) not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {payload!r} on {topic}; got {self.seen}"
            try:
                self.seen.append(self.messages.get(timeout=left))
            except queue.Empty:
                continue
        return list(self.seen)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Provisioned:
    """A terminal made by the provisioning service, with its broker password in a file."""

    ident: str
    site: str
    password_file: Path

    def topic(self, channel: Channel) -> str:
        """One of this terminal's topics."""
        return terminal_topic(self.site, self.ident, channel)


@pytest.fixture
def peers() -> Iterator[Callable[..., Peer]]:
    """Make MQTT clients that are closed after the test."""
    made: list[Peer] = []

    def make(config: dict[str, Any], client_id: str | None = None) -> Peer:
        made.append(Peer(config, client_id))
        return made[-1]

    yield make
    for peer in made:
        peer.close()


@pytest.fixture
def provision(make_site, make_door, tmp_path) -> Callable[..., Provisioned]:
    """Provision a terminal through the service (committed), at a given site or a new one."""
    sites: dict[str, Any] = {}

    def make(name: str, site_code: str = "maple-court") -> Provisioned:
        if site_code not in sites:
            site = make_site(site_code)
            sites[site_code] = (site, make_door(site))
        site, door = sites[site_code]
        made = provision_terminal(db.session, TEST_ACTOR, site, name, [door])
        db.session.commit()
        path = write_secret(tmp_path / f"{made.terminal.ident}.password", made.mqtt_password)
        return Provisioned(made.terminal.ident, site.code, path)

    return make


@pytest.fixture
def two_terminals(secure_broker: SecureBroker, provision) -> tuple[Provisioned, Provisioned]:
    """Terminals A and B of one site, known to the running broker."""
    a, b = provision("North gate"), provision("South gate")
    secure_broker.refresh()
    return a, b


def test_provisioned_terminal_connects_with_tls_and_its_password(secure_broker, two_terminals, peers):
    a, _ = two_terminals
    peers(secure_broker.terminal_mqtt(a.ident, a.password_file)).connected()
    peers(secure_broker.server_mqtt()).connected()


@pytest.mark.parametrize("who", ["wrong password", "unknown user", "anonymous", "worker name, terminal password"])
def test_bad_credentials_are_refused(secure_broker, two_terminals, peers, tmp_path, who):
    a, _ = two_terminals
    wrong = write_secret(tmp_path / "wrong", generate_password())
    config = {
        "wrong password": secure_broker.terminal_mqtt(a.ident, wrong),
        "unknown user": secure_broker.terminal_mqtt("t-000000000000", a.password_file),
        "anonymous": {**secure_broker.server_mqtt(), "username": None, "password_file": None},
        "worker name, terminal password": {**secure_broker.server_mqtt(), "password_file": str(a.password_file)},
    }[who]
    outcome = peers(config).connect()
    assert isinstance(outcome, ReasonCode) and outcome.is_failure, outcome


def test_plain_tcp_is_refused(secure_broker, two_terminals, peers):
    a, _ = two_terminals
    outcome = peers({**secure_broker.terminal_mqtt(a.ident, a.password_file), "tls": False}).connect()
    assert not isinstance(outcome, ReasonCode), f"a plain-TCP client got a CONNACK: {outcome}"


def test_terminal_cannot_read_another_terminals_topics(secure_broker, two_terminals, peers):
    a, b = two_terminals
    server = peers(secure_broker.server_mqtt()).connected()
    peer_a = peers(secure_broker.terminal_mqtt(a.ident, a.password_file)).connected()
    peer_b = peers(secure_broker.terminal_mqtt(b.ident, b.password_file)).connected()
    assert not peer_a.subscribe(a.topic(Channel.SYNC)).is_failure
    assert not peer_b.subscribe(b.topic(Channel.SYNC)).is_failure
    # Denied at SUBACK (0x80) or later, at delivery: either way nothing of B's may arrive.
    peer_a.subscribe(b.topic(Channel.SYNC))
    peer_a.subscribe(b.topic(Channel.COMMAND))
    peer_a.subscribe(everything())
    server.publish(b.topic(Channel.SYNC), b"for-b")
    server.publish(b.topic(Channel.COMMAND), b"cmd-for-b")
    server.publish(a.topic(Channel.SYNC), b"for-a")
    peer_b.wait_for(b.topic(Channel.SYNC), b"for-b")  # the publish did happen
    received = peer_a.wait_for(a.topic(Channel.SYNC), b"for-a")  # and A, after it, got its own
    assert {topic for topic, _ in received} == {a.topic(Channel.SYNC)}


def test_terminal_cannot_publish_as_another_terminal(secure_broker, two_terminals, peers):
    a, b = two_terminals
    server = peers(secure_broker.server_mqtt()).connected()
    assert not server.subscribe(everything()).is_failure
    peer_a = peers(secure_broker.terminal_mqtt(a.ident, a.password_file)).connected()
    for channel in (Channel.STATUS, Channel.BIRTH, Channel.ACK, Channel.EVENTS):
        peer_a.publish(b.topic(channel), b"forged")
    peer_a.publish(a.topic(Channel.EVENTS), b"genuine")
    received = server.wait_for(a.topic(Channel.EVENTS), b"genuine")
    assert received == [(a.topic(Channel.EVENTS), b"genuine")]


def test_terminal_cannot_forge_server_messages(secure_broker, two_terminals, peers):
    a, _ = two_terminals
    server = peers(secure_broker.server_mqtt()).connected()
    assert not server.subscribe(everything()).is_failure
    peer_a = peers(secure_broker.terminal_mqtt(a.ident, a.password_file)).connected()
    for topic in (a.topic(Channel.SYNC), a.topic(Channel.COMMAND), a.topic(Channel.RECEIPT), server_status()):
        peer_a.publish(topic, b"forged")
    peer_a.publish(a.topic(Channel.EVENTS), b"genuine")
    received = server.wait_for(a.topic(Channel.EVENTS), b"genuine")
    assert received == [(a.topic(Channel.EVENTS), b"genuine")]


def test_new_terminal_connects_after_refresh_without_restart(secure_broker, two_terminals, provision, peers):
    a, _ = two_terminals
    peer_a = peers(secure_broker.terminal_mqtt(a.ident, a.password_file)).connected()
    pid = secure_broker.broker.proc.pid
    newcomer = provision("Back gate", site_code="oak-park")
    before = peers(secure_broker.terminal_mqtt(newcomer.ident, newcomer.password_file)).connect()
    assert isinstance(before, ReasonCode) and before.is_failure, "the broker knew the terminal before the refresh"

    files = secure_broker.refresh()

    assert files.terminals == 3
    peers(secure_broker.terminal_mqtt(newcomer.ident, newcomer.password_file)).connected()
    assert secure_broker.broker.proc.pid == pid and not peer_a.dropped.is_set()


def test_offline_terminal_gets_its_backlog_after_a_broker_restart(secure_broker, two_terminals, peers):
    a, _ = two_terminals
    config = secure_broker.terminal_mqtt(a.ident, a.password_file)
    first = peers(config, client_id=a.ident).connected()
    assert not first.subscribe(a.topic(Channel.SYNC)).is_failure
    first.close()
    server = peers(secure_broker.server_mqtt()).connected()
    server.publish(a.topic(Channel.SYNC), b"while-offline")
    server.close()

    secure_broker.restart()

    again = peers(config, client_id=a.ident).connected()
    again.wait_for(a.topic(Channel.SYNC), b"while-offline")


def test_broker_killed_and_started_again_enforces_the_same_files(secure_broker, two_terminals, peers, tmp_path):
    a, _ = two_terminals
    secure_broker.kill()
    secure_broker.start()
    peers(secure_broker.terminal_mqtt(a.ident, a.password_file)).connected()
    wrong = write_secret(tmp_path / "wrong", generate_password())
    outcome = peers(secure_broker.terminal_mqtt(a.ident, wrong)).connect()
    assert isinstance(outcome, ReasonCode) and outcome.is_failure
