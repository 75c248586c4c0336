"""Door supervision end to end: a real terminal process with simulated door contacts and exit buttons, the
worker and a real, secured mosquitto. A door forced open raises an alarm that the server stores through its
usual event ingest; a door held open past its limit does too; the exit button opens without one; every door's
state is retained on the broker for whoever subscribes."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import tomli_w
from sqlalchemy import select

from gatehouse_core.configfile import parse_config
from gatehouse_core.configtypes import MqttConfig
from gatehouse_core.mqtt_client import make_client
from gatehouse_core.wire.base import decode
from gatehouse_core.wire.messages import DoorStates
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.models import AccessEvent, Decision
from terminals import control
from tests.integration.conftest import SecureBroker
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for

pytestmark = pytest.mark.integration

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

HELD_S = 1  # the gate's held-open limit: short, so the test waits little for it
PULSE_MS = 10_000  # unlock time: long enough that an opening right after an exit request is inside it


@pytest.fixture
def estate(app, make_site, make_door) -> dict[str, Any]:
    """A site with a gate (short held-open limit) and a side door (long limit)."""
    site = make_site()
    return {"site": site, "gate": make_door(site, "Gate"), "side": make_door(site, "Side door")}


class DoorWatcher:
    """A client on the worker's broker account subscribed to one terminal's retained door states."""

    def __init__(self, broker: SecureBroker, topic: str) -> None:
        self.topic = topic
        self.latest: DoorStates | None = None
        self.received = 0
        self._lock = threading.Lock()
        config = broker.server_mqtt()
        self.client = make_client(f"watch-{secrets.token_hex(4)}", parse_config(MqttConfig, config))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda client, *args: client.subscribe(topic, qos=1)
        self.client.connect(config["host"], config["port"])
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return  # the retained copy cleared
        with self._lock:
            self.latest = decode(DoorStates, bytes(message.payload))
            self.received += 1

    def state(self, door: int) -> str | None:
        with self._lock:
            latest = self.latest
        if latest is None:
            return None
        return next((d.state.value for d in latest.doors if d.door == door), None)

    def clear_retained(self) -> None:
        """Make the broker forget the retained copy (an empty retained message)."""
        self.client.publish(self.topic, b"", qos=1, retain=True).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def alarms(**where: Any) -> list[AccessEvent]:
    db.session.expire_all()
    found = list(
        db.session.scalars(select(AccessEvent).filter_by(decision=Decision.ALARM, **where).order_by(AccessEvent.id))
    )
    db.session.rollback()
    return found


def delivered(handle: TerminalHandle) -> bool:
    """The terminal's outbox is empty: every event it recorded is stored on the server."""
    store = handle.store()
    try:
        return store.event_count() == 0
    finally:
        store.close()


@pytest.fixture
def supervised(rig: SyncRig, estate: dict[str, Any]) -> Iterator[tuple[TerminalHandle, Path]]:
    """A terminal process serving both doors, each with a simulated contact and exit button, in sync."""
    gate, side = estate["gate"], estate["side"]
    handle = rig.add_terminal(estate["site"], [gate, side], "Gate terminal")
    handle.document["relay"] = {"driver": "simulated", "pulse_ms": PULSE_MS}
    handle.document["door_inputs"] = {"driver": "simulated"}
    handle.document["doors"] = [
        {"door": gate.id, "contact_line": 1, "rex_line": 2, "held_open_seconds": HELD_S},
        {"door": side.id, "contact_line": 3, "rex_line": 4, "held_open_seconds": 3600},
    ]
    handle.config_path.write_text(tomli_w.dumps(handle.document))
    rig.start_worker()
    handle.spawn()  # the real `gatehouse terminal run`, driven through its control socket
    socket_path = Path(handle.document["control_socket"])
    wait_for(lambda: socket_path.exists() and handle.in_sync(), what="terminal process up and in sync")
    yield handle, socket_path


def door(socket_path: Path, door_id: int, action: str) -> str:
    answer = control.send(socket_path, {"op": "door", "door": door_id, "action": action})
    assert "error" not in answer, answer
    assert answer["door"] == door_id
    return str(answer["state"])


@sqlite_only
def test_forced_open_raises_an_alarm_the_server_stores_and_the_retained_state_follows(
    supervised: tuple[TerminalHandle, Path], estate: dict[str, Any], secure_broker: SecureBroker
) -> None:
    handle, socket_path = supervised
    side = estate["side"].id
    watcher = DoorWatcher(secure_broker, terminal_topic(estate["site"].code, handle.ident, Channel.DOORS))
    try:
        # Retained: a subscriber that comes after the terminal connected still learns every door's state.
        wait_for(lambda: watcher.state(side) == "locked", what="the retained door states")
        assert watcher.latest is not None and {d.door for d in watcher.latest.doors} == {estate["gate"].id, side}

        assert door(socket_path, side, "open") == "forced_open"
        wait_for(lambda: len(alarms(door_id=side)) == 1, what="the forced-open alarm stored by the server")
        (alarm,) = alarms(door_id=side)
        assert alarm.reason == "door_forced" and alarm.person_pseudonym is None
        wait_for(lambda: watcher.state(side) == "forced_open", what="forced_open published")
        status = control.send(socket_path, {"op": "status"})
        assert status["door_states"][str(side)] == "forced_open"

        assert door(socket_path, side, "close") == "locked"
        wait_for(lambda: watcher.state(side) == "locked", what="locked published once closed")
    finally:
        watcher.close()


@sqlite_only
def test_the_exit_button_opens_without_an_alarm(
    supervised: tuple[TerminalHandle, Path], estate: dict[str, Any]
) -> None:
    handle, socket_path = supervised
    side = estate["side"].id
    assert door(socket_path, side, "exit") == "unlocked"
    assert door(socket_path, side, "open") == "open"
    assert door(socket_path, side, "close") in ("unlocked", "locked")
    # Alarms are recorded before the loop answers; once the outbox is empty the server holds all of them.
    wait_for(lambda: delivered(handle), what="the terminal's outbox delivered")
    assert alarms(door_id=side) == []


@sqlite_only
def test_a_door_left_open_past_its_limit_is_held_open_with_an_alarm(
    supervised: tuple[TerminalHandle, Path], estate: dict[str, Any], secure_broker: SecureBroker
) -> None:
    handle, socket_path = supervised
    gate = estate["gate"].id
    watcher = DoorWatcher(secure_broker, terminal_topic(estate["site"].code, handle.ident, Channel.DOORS))
    try:
        assert door(socket_path, gate, "exit") == "unlocked"
        assert door(socket_path, gate, "open") == "open"
        wait_for(lambda: len(alarms(door_id=gate)) == 1, what="the held-open alarm stored by the server")
        (alarm,) = alarms(door_id=gate)
        assert alarm.reason == "door_held_open"
        wait_for(lambda: watcher.state(gate) == "held_open", what="held_open published")
        assert door(socket_path, gate, "close") in ("unlocked", "locked")
        wait_for(lambda: watcher.state(gate) in ("unlocked", "locked"), what="the close published")
    finally:
        watcher.close()


@sqlite_only
def test_door_states_are_published_again_when_the_terminal_reconnects(
    supervised: tuple[TerminalHandle, Path], estate: dict[str, Any], secure_broker: SecureBroker
) -> None:
    handle, socket_path = supervised
    side = estate["side"].id
    topic = terminal_topic(estate["site"].code, handle.ident, Channel.DOORS)
    assert door(socket_path, side, "open") == "forced_open"
    watcher = DoorWatcher(secure_broker, topic)
    try:
        wait_for(lambda: watcher.state(side) == "forced_open", what="forced_open published")
        # With the retained copy gone before the broker restarts, only the terminal's reconnect can bring it back.
        watcher.clear_retained()
    finally:
        watcher.close()
    secure_broker.broker.restart()
    watcher = DoorWatcher(secure_broker, topic)
    try:
        wait_for(lambda: watcher.state(side) == "forced_open", timeout=60, what="the door states published again")
    finally:
        watcher.close()
