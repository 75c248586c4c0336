"""A real deployment in a temporary directory for the sync benchmarks.

Keys, a migrated SQLite database, mosquitto secured with the files `gatehouse broker files` writes
(TLS, passwords, per-terminal ACL), provisioned terminals with their config directories, the worker
in a thread or in its own process, and terminals as real `TerminalRuntime`s in host processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomli_w
from flask import Flask
from flask_migrate import upgrade

from gatehouse_core.configfile import parse_config
from gatehouse_core.configtypes import MqttConfig
from gatehouse_core.credential_hash import site_hashing_key
from gatehouse_core.keyring import SIGNING_PUBLIC_KEY, init_keys, load_keys, terminal_seal_key
from gatehouse_core.mqtt_client import make_client
from server.app import create_app
from server.config import ServerConfig
from server.extensions import db
from server.link.worker import Worker
from server.models import Door
from server.ops.broker_files import write_broker_files
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.audit import Actor
from server.services.terminals import terminals
from server.services.terminals.broker_credentials import generate_password

ACTOR = Actor("bench")
HOST = "127.0.0.1"


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def secret(path: Path, text: str) -> Path:
    """Write a 0600 file."""
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(text + "\n")
    return path


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Deployment:
    """One site with its server parts, broker and terminals, all under `base`."""

    def __init__(self, base: Path, poll_interval_ms: int = 20) -> None:
        self.base = base
        self.key_dir = base / "keys"
        init_keys(self.key_dir)
        self.keys = load_keys(self.key_dir)
        self.port = free_port()
        self.broker_dir = base / "broker"
        self.worker_password = secret(base / "worker_mqtt_password", generate_password())
        self.mqtt: dict[str, Any] = {
            "host": HOST,
            "port": self.port,
            "username": "gatehouse-server",
            "password_file": str(self.worker_password),
            "tls": True,
            "ca_file": str(self.broker_dir / "tls" / "ca.crt"),
            "keepalive": 10,
        }
        self.config = parse_config(
            ServerConfig,
            {
                "mode": "development",
                "database_url": f"sqlite:///{base / 'gatehouse.db'}",
                "key_dir": str(self.key_dir),
                "log_level": "WARNING",
                "mqtt": self.mqtt,
                "sync": {"poll_interval_ms": poll_interval_ms},
            },
        )
        self.app: Flask = create_app(self.config, keys=self.keys)
        with self.app.app_context():
            upgrade()
        self.broker: subprocess.Popen[bytes] | None = None
        self.children: list[subprocess.Popen[bytes]] = []
        self._workers: list[tuple[Worker, threading.Thread]] = []

    # ---- site and terminals ------------------------------------------------------------------------------

    def site(self, code: str = "bench", doors: int = 1, face: bool = True) -> list[int]:
        """A site with `doors` doors (face, card, ID and app code); returns the door ids."""
        with self.app.app_context():
            site = sites.create_site(db.session, ACTOR, code=code, name="Benchmark site")
            site.face_enabled = face
            made = [sites.save_door(db.session, ACTOR, site, f"Door {i}", DoorMethods(face=face)) for i in range(doors)]
            db.session.commit()
            return [d.id for d in made]

    def provision(self, site_code: str, door_ids: Sequence[Sequence[int]]) -> list[Path]:
        """Provision one terminal per entry (the doors it serves); returns their config files."""
        paths = []
        with self.app.app_context():
            site = sites.get_site(db.session, site_code)
            for i, ids in enumerate(door_ids):
                doors = [db.session.get(Door, d) for d in ids]
                made = terminals.provision_terminal(db.session, ACTOR, site, f"T{i}", [d for d in doors if d])
                db.session.commit()
                paths.append(self._terminal_dir(site_code, made.terminal.ident, made.mqtt_password))
        return paths

    def _terminal_dir(self, site_code: str, ident: str, password: str) -> Path:
        out = self.base / "terminals" / ident
        out.mkdir(parents=True)
        document = {
            "terminal_id": ident,
            "site": site_code,
            "data_dir": str(out / "data"),
            "server_public_key": str(self.key_dir / SIGNING_PUBLIC_KEY),
            "seal_key_file": str(secret(out / "seal.key", terminal_seal_key(self.keys.template_key, ident).hex())),
            "credential_key_file": str(
                secret(out / "credential.key", site_hashing_key(self.keys.credential_secret, site_code).hex())
            ),
            "log_level": "WARNING",
            "mqtt": {**self.mqtt, "username": ident, "password_file": str(secret(out / "mqtt_password", password))},
        }
        path = out / "terminal.toml"
        path.write_text(tomli_w.dumps(document))
        return path

    # ---- broker ------------------------------------------------------------------------------------------

    def start_broker(self) -> None:
        """Write the broker files from the database and start mosquitto with them."""
        with self.app.app_context():
            write_broker_files(db.session, self.config, self.broker_dir, port=self.port, bind=HOST)
        conf = self.base / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"{user}include_dir {self.broker_dir}\n")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with open(self.base / "mosquitto.log", "ab") as log:
            self.broker = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.broker.poll() is not None:
                    raise SystemExit(f"mosquitto did not start; see {self.base / 'mosquitto.log'}") from None
                time.sleep(0.05)

    def server_client(self, client_id: str) -> Any:
        """A connected MQTT client with the server's broker account (reads every Gatehouse topic)."""
        client = make_client(client_id, MqttConfig(**self.mqtt))
        client.connect(HOST, self.port)
        client.loop_start()
        return client

    # ---- worker and terminal hosts -----------------------------------------------------------------------

    def start_worker(self) -> Worker:
        """The worker in a thread of this process."""
        worker = Worker(create_app(self.config, keys=self.keys))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        if not worker.connected.wait(20):
            raise SystemExit("worker did not connect to mosquitto")
        self._workers.append((worker, thread))
        return worker

    def spawn_worker(self) -> subprocess.Popen[bytes]:
        """The worker as `gatehouse server worker`, a process of its own (as in production)."""
        path = self.base / "server.toml"
        path.write_text(tomli_w.dumps(self.config.model_dump(mode="json", exclude={"http"}, exclude_none=True)))
        with open(self.base / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "server", "worker", "--config", str(path)],
                stdout=log,
                stderr=log,
            )
        self.children.append(proc)
        return proc

    def spawn_terminals(self, configs: Sequence[Path], processes: int) -> None:
        """Run the terminals as real TerminalRuntimes, spread over `processes` host processes."""
        for i in range(processes):
            mine = [str(p) for p in configs[i::processes]]
            if not mine:
                continue
            with open(self.base / f"terminals-{i}.log", "ab") as log:
                self.children.append(
                    subprocess.Popen([sys.executable, "-m", "bench.terminal_host", *mine], stdout=log, stderr=log)
                )

    def close(self) -> None:
        """Stop everything."""
        for worker, thread in self._workers:
            worker.stop_event.set()
            thread.join(20)
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        if self.broker is not None:
            self.broker.terminate()
            self.broker.wait(10)
        with self.app.app_context():
            db.engine.dispose()
