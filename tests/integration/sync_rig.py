"""A worker and door terminals around a secured mosquitto, in threads or in processes that can be killed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w
from flask import Flask
from flask_migrate import stamp

from gatehouse_core.configfile import parse_config
from gatehouse_core.credential_hash import site_hashing_key
from gatehouse_core.keyring import SIGNING_PUBLIC_KEY, ServerKeys, terminal_seal_key
from gatehouse_core.wire.records import PersonRecord
from server.app import create_app
from server.extensions import db
from server.link import roster
from server.link.worker import Worker
from server.models import Door, Site, Terminal
from server.services.terminals import terminals
from terminals.config import TerminalConfig
from terminals.runtime import LinkState, TerminalRuntime
from terminals.store import TerminalStore
from tests.conftest import TEST_ACTOR
from tests.integration.conftest import SecureBroker, write_secret


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll until `predicate` holds, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class TerminalHandle:
    """One provisioned terminal: its files, and its runtime in a thread or a process."""

    def __init__(self, rig: SyncRig, terminal: Terminal, password: str) -> None:
        self.rig = rig
        self.id = terminal.id
        self.ident = terminal.ident
        self.dir = rig.base / terminal.ident
        self.dir.mkdir(parents=True)
        password_file = write_secret(self.dir / "mqtt_password", password)
        seal = write_secret(self.dir / "seal.key", terminal_seal_key(rig.keys.template_key, terminal.ident).hex())
        self.seal_key = terminal_seal_key(rig.keys.template_key, terminal.ident)
        self.credential_key = site_hashing_key(rig.keys.credential_secret, terminal.site.code)
        credential = write_secret(self.dir / "credential.key", self.credential_key.hex())
        self.document: dict[str, Any] = {
            "terminal_id": terminal.ident,
            "site": terminal.site.code,
            "data_dir": str(self.dir / "data"),
            "server_public_key": str(rig.key_dir / SIGNING_PUBLIC_KEY),
            "seal_key_file": str(seal),
            "credential_key_file": str(credential),
            # Unix socket paths are limited to about 100 bytes; pytest's tmp paths can be longer.
            "control_socket": str(Path(tempfile.mkdtemp(prefix="gh-")) / "control.sock"),
            "log_level": "DEBUG",
            "mqtt": rig.broker.terminal_mqtt(terminal.ident, password_file),
        }
        self.config_path = self.dir / "terminal.toml"
        self.config_path.write_text(tomli_w.dumps(self.document))
        self.runtime: TerminalRuntime | None = None
        self._thread: threading.Thread | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    # threads
    def start(self, *, online: bool = True, **parts: Any) -> TerminalRuntime:
        """Run the terminal in a thread of this process (with optional relay/drivers) and wait until online."""
        self.runtime = TerminalRuntime(parse_config(TerminalConfig, self.document), **parts)
        self._thread = threading.Thread(target=self.runtime.run, daemon=True)
        self._thread.start()
        runtime = self.runtime
        if online:
            wait_for(lambda: runtime.state is LinkState.ONLINE, what=f"terminal {self.ident} online")
        return runtime

    def stop(self) -> None:
        """Stop the threaded terminal cleanly."""
        if self.runtime is not None and self._thread is not None:
            self.runtime.stop_event.set()
            self._thread.join(15)
            self.runtime = None

    # processes
    def spawn(self) -> subprocess.Popen[bytes]:
        """Run the terminal as `gatehouse terminal run` in a process of its own."""
        with open(self.dir / "process.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "terminal", "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=log,
            )
        return self.proc

    def kill(self) -> None:
        """SIGKILL the terminal process."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    # what it holds
    def store(self) -> TerminalStore:
        """A read-only view of the terminal's store (close it after use)."""
        return TerminalStore(Path(self.document["data_dir"]) / "terminal.db", read_only=True)

    def applied_seq(self) -> int:
        """The sequence the terminal has applied."""
        if not (Path(self.document["data_dir"]) / "terminal.db").exists():
            return 0
        store = self.store()
        try:
            return store.applied_seq()
        finally:
            store.close()

    def roster_hash(self) -> str:
        """The terminal's roster hash."""
        store = self.store()
        try:
            return store.roster_hash()
        finally:
            store.close()

    def person(self, pseudonym: str) -> PersonRecord | None:
        """What the terminal holds of a person."""
        store = self.store()
        try:
            record = store.record("person", pseudonym)
        finally:
            store.close()
        assert record is None or isinstance(record, PersonRecord)
        return record

    def in_sync(self) -> bool:
        """At the site's head with the roster hash the server expects."""
        head, expected = self.rig.expected(self.id)
        try:
            return self.applied_seq() == head and self.roster_hash() == expected
        except Exception:  # the file may be mid-creation
            return False


class SyncRig:
    """Workers and terminals for one test; everything is stopped by `close`."""

    def __init__(self, app: Flask, keys: ServerKeys, key_dir: Path, broker: SecureBroker, base: Path) -> None:
        self.app = app
        self.keys = keys
        self.key_dir = key_dir
        self.broker = broker
        self.base = base
        self.terminals: list[TerminalHandle] = []
        self._workers: list[tuple[Worker, threading.Thread]] = []
        self.worker_proc: subprocess.Popen[bytes] | None = None

    def add_terminal(self, site: Site, doors: list[Door], name: str | None = None) -> TerminalHandle:
        """Provision a terminal, let the broker know it, and write its config."""
        made = terminals.provision_terminal(
            db.session, TEST_ACTOR, site, name or f"terminal {len(self.terminals) + 1}", doors
        )
        db.session.commit()
        self.broker.refresh()
        handle = TerminalHandle(self, made.terminal, made.mqtt_password)
        self.terminals.append(handle)
        return handle

    def start_worker(self) -> Worker:
        """Run a worker in a thread of this process."""
        worker = Worker(create_app(self.broker.config, keys=self.keys))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        assert worker.connected.wait(15), "worker did not connect to mosquitto"
        self._workers.append((worker, thread))
        return worker

    def stop_workers(self) -> None:
        """Stop threaded workers."""
        for worker, thread in self._workers:
            worker.stop_event.set()
            thread.join(15)
        self._workers.clear()

    def spawn_worker(self) -> subprocess.Popen[bytes]:
        """Run `gatehouse server worker` in a process of its own."""
        with self.app.app_context():
            # The test database was made with create_all; the worker insists on a migrated schema.
            stamp()
        path = self.base / "server.toml"
        document = self.broker.config.model_dump(mode="json", exclude={"http"}, exclude_none=True)
        document["log_level"] = "DEBUG"
        path.write_text(tomli_w.dumps(document))
        with open(self.base / "worker.log", "ab") as log:  # the child keeps its own descriptor
            self.worker_proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "server", "worker", "--config", str(path)],
                stdout=log,
                stderr=log,
            )
        return self.worker_proc

    def kill_worker(self) -> None:
        """SIGKILL the worker process."""
        if self.worker_proc is not None:
            self.worker_proc.kill()
            self.worker_proc.wait(10)
            self.worker_proc = None

    def expected(self, terminal_id: int) -> tuple[int, str]:
        """The site's journal head and the roster hash a terminal should report."""
        with self.app.app_context():
            db.session.expire_all()
            terminal = db.session.get(Terminal, terminal_id)
            assert terminal is not None
            scope = roster.scope_of(db.session, terminal)
            result = terminal.site.journal_seq, roster.expected_hash(db.session, terminal.site, scope)
            db.session.rollback()
            return result

    def close(self) -> None:
        """Stop every terminal and worker."""
        for handle in self.terminals:
            handle.stop()
            handle.kill()
        self.stop_workers()
        self.kill_worker()
