"""Terminal availability over a real mosquitto broker: birth, online, clean stop, crash (last will)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import tomli_w

from gatehouse_core.configfile import parse_config
from gatehouse_core.credential_hash import site_hashing_key
from gatehouse_core.keyring import terminal_seal_key
from server.app import create_app
from server.extensions import db
from server.link.worker import Worker
from server.models import Terminal, TerminalStatus
from server.services.terminals import terminals
from terminals.config import TerminalConfig
from terminals.runtime import LinkState, TerminalRuntime
from tests.conftest import TEST_ACTOR, server_config
from tests.integration.sync_rig import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def provisioned(app, make_site, make_door, mosquitto, key_dir, keys, tmp_path):
    """A site with one terminal, and the terminal's config document."""
    site = make_site()
    door = make_door(site)
    made = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Gate terminal", [door])
    db.session.commit()
    seal_key = tmp_path / "seal.key"
    seal_key.write_text(terminal_seal_key(keys.template_key, made.terminal.ident).hex())
    credential_key = tmp_path / "credential.key"
    credential_key.write_text(site_hashing_key(keys.credential_secret, site.code).hex())
    document = {
        "terminal_id": made.terminal.ident,
        "site": site.code,
        "data_dir": str(tmp_path / "terminal"),
        "server_public_key": str(key_dir / "signing_ed25519.pub.pem"),
        "seal_key_file": str(seal_key),
        "credential_key_file": str(credential_key),
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "keepalive": 5},
    }
    return made.terminal.id, document


@pytest.fixture
def start_worker(db_url, key_dir, keys, mosquitto) -> Iterator[Callable[[], threading.Event]]:
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start() -> threading.Event:
        config = server_config(db_url, key_dir, mqtt={"host": "127.0.0.1", "port": mosquitto.port})
        worker = Worker(create_app(config, keys=keys))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        assert worker.connected.wait(10), "worker did not connect to mosquitto"
        stops.append((worker.stop_event, thread))
        return worker.stop_event

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(10)


def terminal_row(terminal_id: int) -> Terminal:
    db.session.expire_all()
    row = db.session.get(Terminal, terminal_id)
    assert row is not None
    return row


def test_terminal_comes_online_reports_birth_and_goes_offline_on_stop(provisioned, start_worker):
    terminal_id, document = provisioned
    start_worker()
    runtime = TerminalRuntime(parse_config(TerminalConfig, document))
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    wait_for(lambda: terminal_row(terminal_id).software_version is not None, what="birth message")
    row = terminal_row(terminal_id)
    assert row.status is TerminalStatus.ONLINE and row.last_seen_at is not None
    assert row.software_version.startswith("gatehouse-terminal/")
    runtime.stop_event.set()
    thread.join(10)
    assert runtime.state is LinkState.STOPPED
    wait_for(lambda: terminal_row(terminal_id).status is TerminalStatus.OFFLINE, what="offline status")


def test_worker_started_after_terminal_still_gets_its_birth(provisioned, start_worker):
    terminal_id, document = provisioned
    runtime = TerminalRuntime(parse_config(TerminalConfig, document))
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    wait_for(lambda: runtime.state is LinkState.ONLINE, what="terminal connected")
    time.sleep(0.3)
    start_worker()
    try:
        wait_for(lambda: terminal_row(terminal_id).software_version is not None, what="birth after worker start")
    finally:
        runtime.stop_event.set()
        thread.join(10)


def test_killed_terminal_is_marked_offline_by_its_last_will(provisioned, start_worker, tmp_path):
    terminal_id, document = provisioned
    path = tmp_path / "terminal.toml"
    path.write_text(tomli_w.dumps(document))
    start_worker()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "terminal", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: terminal_row(terminal_id).status is TerminalStatus.ONLINE, 20, "terminal online")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        # mosquitto publishes the will after 1.5 x keepalive (5 s) without traffic.
        wait_for(lambda: terminal_row(terminal_id).status is TerminalStatus.OFFLINE, 20, "last will")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_worker_drops_forged_and_malformed_messages(provisioned, start_worker, mosquitto):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from gatehouse_core.wire.topics import Channel, terminal_topic

    terminal_id, document = provisioned
    start_worker()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="intruder")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        birth_topic = terminal_topic(document["site"], document["terminal_id"], Channel.BIRTH)
        status_topic = terminal_topic(document["site"], document["terminal_id"], Channel.STATUS)
        for topic, payload in [
            (birth_topic, b"not json"),
            (
                birth_topic,
                b'{"v": 1, "type": "birth", "terminal": "t-other", "applied_seq": 5, '
                b'"roster_hash": "' + b"0" * 64 + b'", "software": "x"}',
            ),
            (status_topic, b"maybe"),
            ("gatehouse/nosuchsite/terminals/t-x/status", b"online"),
        ]:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        time.sleep(1.0)
        row = terminal_row(terminal_id)
        assert row.status is TerminalStatus.UNKNOWN and row.applied_seq == 0 and row.software_version is None
    finally:
        client.loop_stop()
        client.disconnect()
