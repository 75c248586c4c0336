"""Integration fixtures: a real mosquitto secured with the files `gatehouse broker files` writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from server.config import ServerConfig
from server.extensions import db
from server.ops.broker_files import BrokerFiles, write_broker_files
from server.services.terminals.broker_credentials import generate_password
from tests.conftest import server_config
from tests.support.daemons import Mosquitto
from tests.support.pcsc import PcscStack, VirtualCard

WORKER_USER = "gatehouse-server"
# Clients dial an address the broker certificate names (write_broker_files' default hostnames include it).
BROKER_HOST = "127.0.0.1"


def write_secret(path: Path, text: str) -> Path:
    """A 0600 file holding one secret, as a provisioning directory has it."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text + "\n", encoding="utf-8")
    return path


class SecureBroker:
    """mosquitto with TLS, passwords and per-terminal ACLs generated from the test database."""

    def __init__(self, app: Flask, base: Path) -> None:
        self.app = app
        self.out_dir = base / "broker-files"
        self.broker = Mosquitto(base / "broker", conf_dir=self.out_dir)
        base.mkdir(parents=True, exist_ok=True)
        self.worker_password_file = write_secret(base / "worker_mqtt_password", generate_password())
        app_config: ServerConfig = app.extensions["gatehouse"].config
        # The out dir's CA path is fixed before the files exist, so the config can name it up front.
        self.ca_file = self.out_dir / "tls" / "ca.crt"
        self.config = server_config(app_config.database_url, app_config.key_dir, mqtt=self.server_mqtt())
        self.files = self.write()

    @property
    def port(self) -> int:
        """The TLS listener's port (the same across restarts)."""
        return self.broker.port

    def server_mqtt(self) -> dict[str, Any]:
        """`ServerConfig.mqtt` for the worker's broker account."""
        return {
            "host": BROKER_HOST,
            "port": self.port,
            "username": WORKER_USER,
            "password_file": str(self.worker_password_file),
            "tls": True,
            "ca_file": str(self.ca_file),
            "keepalive": 5,
        }

    def terminal_mqtt(self, ident: str, password_file: Path) -> dict[str, Any]:
        """`TerminalConfig.mqtt` for a provisioned terminal."""
        return {**self.server_mqtt(), "username": ident, "password_file": str(password_file)}

    def write(self) -> BrokerFiles:
        """Write the broker files from what is committed in the database."""
        with self.app.app_context():
            self.files = write_broker_files(db.session, self.config, self.out_dir, port=self.port, bind=BROKER_HOST)
        assert self.files.ca_cert == self.ca_file
        return self.files

    def refresh(self) -> BrokerFiles:
        """Rewrite the files from the database (commit first) and make the running broker reread them."""
        files = self.write()
        self.broker.reload()
        return files

    def start(self) -> None:
        """Start the broker (again, after kill or stop) on the same port."""
        self.broker.start()

    def stop(self) -> None:
        """Stop the broker cleanly."""
        self.broker.stop()

    def restart(self) -> None:
        """Stop and start on the same port with the same persistence directory."""
        self.broker.restart()

    def kill(self) -> None:
        """SIGKILL the broker."""
        self.broker.kill()


@pytest.fixture
def secure_broker(app: Flask, tmp_path: Path) -> Iterator[SecureBroker]:
    """A running mosquitto with TLS and ACLs written by write_broker_files from the test database."""
    broker = SecureBroker(app, tmp_path / "secure-broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def rig(app: Flask, keys: Any, key_dir: Path, secure_broker: SecureBroker, tmp_path: Path) -> Iterator[Any]:
    """Workers and terminals around the secured broker, all stopped after the test."""
    from tests.integration.sync_rig import SyncRig  # sync_rig imports this module

    made = SyncRig(app, keys, key_dir, secure_broker, tmp_path / "rig")
    yield made
    made.close()


@pytest.fixture(scope="module")
def pcsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscStack]:
    """pcscd with the vpcd virtual readers, for one test module."""
    with PcscStack(tmp_path_factory.mktemp("pcsc")) as stack:
        yield stack


@pytest.fixture
def card(pcsc: PcscStack) -> Iterator[VirtualCard]:
    """A virtual card for 'Virtual PCD 00 00', out of the reader at the end of the test."""
    with pcsc.card() as virtual_card:
        yield virtual_card
