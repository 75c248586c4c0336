"""Terminal commands end to end over a real, secured mosquitto: the console's rows go out through the worker,
the terminal opens a door, re-announces itself or captures a card, and its reply comes back. Forged,
misaddressed, expired and replayed commands do nothing."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from gatehouse_core.configfile import parse_config
from gatehouse_core.configtypes import MqttConfig
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.mqtt_client import make_client
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import Command, CommandOp
from gatehouse_core.wire.signing import sign
from gatehouse_core.wire.topics import Channel, all_terminals, terminal_topic
from server.extensions import db
from server.models import (
    AccessEvent,
    CommandStatus,
    ConsoleRole,
    Credential,
    CredentialStatus,
    Decision,
    EntryMethod,
    Terminal,
    TerminalCommand,
    utcnow,
)
from server.services.access import access
from server.services.audit import Actor
from server.services.terminals import commands
from terminals import control
from terminals.relay import SimulatedRelay
from tests.conftest import TEST_ACTOR
from tests.integration.conftest import SecureBroker
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

CARD = "04A2B3C4D5E6F7"


@pytest.fixture
def estate(app, make_site, make_door, make_person, make_user) -> dict[str, Any]:
    """A site with a gate and a side door, one group over both, a resident without a card, and a manager."""
    site = make_site()
    gate = make_door(site, "Gate")
    side = make_door(site, "Side door")
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [gate, side], ALWAYS.windows)
    db.session.commit()
    resident = make_person(site, "Resident")
    access.add_member(db.session, TEST_ACTOR, group, resident)
    db.session.commit()
    manager = Actor.of(make_user("manager1", ConsoleRole.MANAGER))
    return {"site": site, "gate": gate, "side": side, "resident": resident, "manager": manager}


def command_row(command_id: int) -> TerminalCommand:
    db.session.expire_all()
    row = db.session.get(TerminalCommand, command_id)
    assert row is not None
    db.session.rollback()
    return row


def finished(command_id: int) -> bool:
    return command_row(command_id).status not in (CommandStatus.PENDING, CommandStatus.SENT)


def server_events(**where: Any) -> list[AccessEvent]:
    db.session.expire_all()
    found = list(db.session.scalars(select(AccessEvent).filter_by(**where).order_by(AccessEvent.id)))
    db.session.rollback()
    return found


def pulses(relay: SimulatedRelay, door: int) -> int:
    return sum(1 for _, d, unlocked in relay.history if d == door and unlocked)


def delivered(handle: TerminalHandle) -> bool:
    """The terminal's outbox is empty: every event it recorded is stored on the server."""
    store = handle.store()
    try:
        return store.event_count() == 0
    finally:
        store.close()


def in_sync(handle: TerminalHandle) -> None:
    wait_for(handle.in_sync, what=f"terminal {handle.ident} in sync")


class ServerPeer:
    """A raw MQTT client on the worker's broker account: it can publish anything on any command topic."""

    def __init__(self, broker: SecureBroker) -> None:
        self.client = make_client(f"peer-{secrets.token_hex(4)}", parse_config(MqttConfig, broker.server_mqtt()))
        config = broker.server_mqtt()
        self.client.connect(config["host"], config["port"])
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_door_opened_from_the_console_pulses_and_the_remote_event_reaches_the_server(
    rig: SyncRig, estate: dict[str, Any]
) -> None:
    gate = estate["gate"]
    a = rig.add_terminal(estate["site"], [gate], "Gate terminal")
    rig.start_worker()
    relay = SimulatedRelay()
    a.start(relay=relay)
    in_sync(a)

    command = commands.open_door(db.session, estate["manager"], db.session.get_one(Terminal, a.id), gate)
    db.session.commit()
    wait_for(lambda: pulses(relay, gate.id) == 1, what="the gate unlocked")
    wait_for(lambda: finished(command.id), what="the terminal's reply recorded")
    row = command_row(command.id)
    assert (row.status, row.outcome) == (CommandStatus.DONE, "opened")
    wait_for(lambda: len(server_events(door_id=gate.id)) == 1, what="the event on the server")
    event = server_events(door_id=gate.id)[0]
    assert (event.method, event.decision, event.reason, event.person_pseudonym) == (
        EntryMethod.REMOTE,
        Decision.GRANT,
        "remote_open",
        None,
    )
    wait_for(lambda: relay.history[-1][1:] == (gate.id, False), timeout=10, what="the gate locked again")


def test_resync_makes_the_terminal_verify_its_roster_and_repair_it(rig: SyncRig, estate: dict[str, Any]) -> None:
    gate = estate["gate"]
    a = rig.add_terminal(estate["site"], [gate], "Gate terminal")
    rig.start_worker()
    a.start()
    in_sync(a)
    # The roster on disk goes wrong behind the terminal's back (say a restored backup); nothing tells it so.
    path = Path(a.document["data_dir"]) / "terminal.db"
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as damaged, damaged:
        damaged.execute("DELETE FROM records WHERE kind = 'person'")
    assert not a.in_sync() and a.person(estate["resident"].pseudonym) is None

    command = commands.request_resync(db.session, estate["manager"], db.session.get_one(Terminal, a.id))
    db.session.commit()
    wait_for(lambda: finished(command.id), what="the terminal's reply recorded")
    assert (command_row(command.id).status, command_row(command.id).outcome) == (CommandStatus.DONE, "resyncing")
    # Its new birth carries the roster hash; the server sees the difference and sends a snapshot.
    in_sync(a)
    assert a.person(estate["resident"].pseudonym) is not None


def test_a_card_captured_at_the_terminal_becomes_the_residents_and_then_opens_the_door(
    rig: SyncRig, estate: dict[str, Any]
) -> None:
    gate, resident = estate["gate"], estate["resident"]
    a = rig.add_terminal(estate["site"], [gate], "Gate terminal")
    rig.start_worker()
    a.spawn()  # the real `gatehouse terminal run`, driven through its control socket
    socket_path = Path(a.document["control_socket"])
    wait_for(lambda: socket_path.exists() and a.in_sync(), what="terminal process up and in sync")

    command = commands.capture_card(db.session, estate["manager"], db.session.get_one(Terminal, a.id), resident)
    db.session.commit()
    wait_for(lambda: command_row(command.id).status is CommandStatus.SENT, what="the command sent")
    # The terminal arms the capture when the command arrives; until then a card would be decided (and refused).
    answer: dict[str, Any] = {}

    def captured() -> bool:
        answer.update(control.send(socket_path, {"op": "card", "uid": CARD}))
        return bool(answer.get("captured"))

    wait_for(captured, what="the card captured")
    assert answer["granted"] is False and answer["door"] == gate.id
    wait_for(lambda: finished(command.id), what="the reply recorded")
    row = command_row(command.id)
    assert (row.status, row.outcome) == (CommandStatus.DONE, "enrolled")
    db.session.expire_all()
    credential = db.session.get(Credential, row.credential_id)
    assert credential is not None and credential.person_id == resident.id
    assert credential.status is CredentialStatus.ACTIVE
    db.session.rollback()
    refused_while_arming = len(server_events(door_id=gate.id))

    # The new credential syncs to the terminal, and the same card now opens the door like any card.
    wait_for(lambda: a.in_sync(), what="the credential on the terminal")
    wait_for(
        lambda: control.send(socket_path, {"op": "card", "uid": CARD}).get("granted") is True,
        what="the captured card granted",
    )
    wait_for(lambda: any(e.reason == "granted" for e in server_events(door_id=gate.id)), what="the grant event")
    granted = [e for e in server_events(door_id=gate.id) if e.decision is Decision.GRANT]
    assert granted[0].person_pseudonym == resident.pseudonym and granted[0].method is EntryMethod.CARD
    # The captured presentation itself left no event: only refusals from before the capture was armed.
    before = server_events(door_id=gate.id)[:refused_while_arming]
    assert all(e.decision is Decision.DENY for e in before)


def test_forged_misaddressed_expired_and_replayed_commands_do_nothing(
    rig: SyncRig, keys: ServerKeys, estate: dict[str, Any], secure_broker: SecureBroker
) -> None:
    gate, side = estate["gate"], estate["side"]
    a = rig.add_terminal(estate["site"], [gate], "Gate terminal")
    b = rig.add_terminal(estate["site"], [side], "Side terminal")
    rig.start_worker()
    relay_a, relay_b = SimulatedRelay(), SimulatedRelay()
    a.start(relay=relay_a)
    b.start(relay=relay_b)
    in_sync(a)
    in_sync(b)
    site = estate["site"].code
    topic_a = terminal_topic(site, a.ident, Channel.COMMAND)
    topic_b = terminal_topic(site, b.ident, Channel.COMMAND)

    # One genuine command through the console and the worker: one pulse.
    genuine = commands.open_door(db.session, estate["manager"], db.session.get_one(Terminal, a.id), gate)
    db.session.commit()
    wait_for(lambda: finished(genuine.id), what="the genuine command answered")
    assert pulses(relay_a, gate.id) == 1
    # A second opening during the pulse would only extend it; wait for the lock so each shows as a pulse.
    wait_for(lambda: relay_a.history[-1][1:] == (gate.id, False), timeout=10, what="the gate locked again")

    def signed(topic: str, key: Ed25519PrivateKey = keys.signing_key, **fields: Any) -> bytes:
        body = {
            "site": site,
            "terminal": a.ident,
            "ref": secrets.token_hex(16),
            "op": CommandOp.OPEN_DOOR,
            "door": gate.id,
            "expires_at": utcnow() + timedelta(seconds=30),
            **fields,
        }
        return sign(key, topic, encode(Command(**body)))

    peer = ServerPeer(secure_broker)
    try:
        row = command_row(genuine.id)
        replay = Command(
            site=site, terminal=a.ident, ref=row.ref, op=CommandOp.OPEN_DOOR, door=gate.id, expires_at=row.expires_at
        )
        peer.publish(topic_a, sign(keys.signing_key, topic_a, encode(replay)))  # replayed
        peer.publish(topic_a, signed(topic_a, key=Ed25519PrivateKey.generate()))  # forged
        peer.publish(topic_a, b"unsigned")
        peer.publish(topic_a, signed(topic_b, terminal=b.ident, door=side.id))  # B's command, onto A's topic
        peer.publish(topic_a, signed(topic_a, terminal=b.ident))  # signed for A's topic, naming B
        peer.publish(topic_a, signed(topic_a, expires_at=utcnow() - timedelta(seconds=1)))  # expired
        # Then one good command: MQTT keeps a topic in order, so once it acts the ones before were all handled.
        peer.publish(topic_a, signed(topic_a))
    finally:
        peer.close()
    wait_for(lambda: pulses(relay_a, gate.id) == 2, what="the last, good command")
    wait_for(lambda: delivered(a) and len(server_events(door_id=gate.id)) >= 2, what="the events on the server")
    # Each command acted on records an event (a pulse may merge with another's): two, and none on B.
    assert [e.reason for e in server_events(door_id=gate.id)] == ["remote_open", "remote_open"]
    assert relay_b.history == [] and server_events(door_id=side.id) == []


def test_an_offline_terminal_never_acts_later_on_a_command_that_expired_meanwhile(
    rig: SyncRig, estate: dict[str, Any]
) -> None:
    gate = estate["gate"]
    a = rig.add_terminal(estate["site"], [gate], "Gate terminal")
    rig.start_worker()
    a.start()
    in_sync(a)
    a.stop()  # a clean stop: the broker keeps its session and queues what comes for it

    terminal = db.session.get_one(Terminal, a.id)
    stale = commands.open_door(db.session, estate["manager"], terminal, gate, at=utcnow() - timedelta(seconds=12))
    db.session.commit()
    wait_for(lambda: command_row(stale.id).status is CommandStatus.SENT, what="the command handed to the broker")
    wait_for(lambda: command_row(stale.id).status is CommandStatus.EXPIRED, what="the command given up")

    relay = SimulatedRelay()
    a.start(relay=relay)
    fresh = commands.open_door(db.session, estate["manager"], db.session.get_one(Terminal, a.id), gate)
    db.session.commit()
    # The queued, expired command arrives first; only the fresh one opens the door.
    wait_for(lambda: finished(fresh.id), what="the fresh command answered")
    assert command_row(fresh.id).outcome == "opened"
    assert pulses(relay, gate.id) == 1
    assert command_row(stale.id).status is CommandStatus.EXPIRED
    wait_for(lambda: delivered(a) and len(server_events(door_id=gate.id)) >= 1, what="the event on the server")
    assert len(server_events(door_id=gate.id)) == 1


def test_a_terminal_may_answer_only_on_its_own_reply_topic(
    rig: SyncRig, estate: dict[str, Any], secure_broker: SecureBroker
) -> None:
    from tests.integration.test_broker_security import Peer

    a = rig.add_terminal(estate["site"], [estate["gate"]], "Gate terminal")
    b = rig.add_terminal(estate["site"], [estate["side"]], "Side terminal")
    server = Peer(secure_broker.server_mqtt()).connected()
    peer_a = Peer(a.document["mqtt"]).connected()
    try:
        assert not server.subscribe(all_terminals(Channel.REPLY)).is_failure
        peer_a.publish(terminal_topic(estate["site"].code, b.ident, Channel.REPLY), b"forged")
        peer_a.publish(terminal_topic(estate["site"].code, a.ident, Channel.REPLY), b"genuine")
        received = server.wait_for(terminal_topic(estate["site"].code, a.ident, Channel.REPLY), b"genuine")
        assert received == [(terminal_topic(estate["site"].code, a.ident, Channel.REPLY), b"genuine")]
    finally:
        server.close()
        peer_a.close()
