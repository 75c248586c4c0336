"""Real external services for the integration tier, started by fixtures on free ports.

PostgreSQL: a throwaway cluster made with initdb in a temporary directory (run as the `postgres`
user when the tests run as root, because PostgreSQL refuses to run as root). mosquitto: the Debian
broker with a generated config. Set GATEHOUSE_TEST_PG_URL to use an existing PostgreSQL instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServiceError(RuntimeError):
    """A real service the tests need could not be started; the message says what to install."""


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"PostgreSQL's {name} not found: install the 'postgresql' package (scripts/test.sh does)")
    return path


class PostgresServer:
    """A private PostgreSQL cluster on a free port, with trust auth on loopback."""

    def __init__(self) -> None:
        # Not under pytest's tmp dir: that is private to root, and the server runs as 'postgres'.
        self.base = Path(tempfile.mkdtemp(prefix="gatehouse-pg-"))
        self.port = free_port()
        self.data = self.base / "pgdata"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError(
                    "running as root needs the 'postgres' system user (from the postgresql package)"
                ) from None
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        """Initialise and start the cluster; returns a SQLAlchemy URL to its 'postgres' database."""
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "server.log"),
            "-o",
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off",
            "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the cluster (fast shutdown)."""
        subprocess.run(
            [*self._as_user, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.base, ignore_errors=True)


class Mosquitto:
    """The Debian mosquitto broker on a free loopback port.

    Without `conf_dir` it allows anonymous clients on plain TCP (a generated config). With `conf_dir` it runs
    the fragment `gatehouse broker files` wrote there (TLS, passwords, ACL); the fragment must name `self.port`.
    """

    def __init__(self, base: Path, extra_config: str = "", conf_dir: Path | None = None) -> None:
        self.base = base
        self.port = free_port()
        self.extra_config = extra_config
        self.conf_dir = conf_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "log"

    def _config(self) -> str:
        # As root, mosquitto drops to its own user before reading any file or writing persistence, and
        # pytest's temporary directories are private to root; the test broker stays root to reach them.
        user = "user root\n" if os.geteuid() == 0 else ""
        if self.conf_dir is not None:
            return f"{user}include_dir {self.conf_dir}\n{self.extra_config}\n"
        return (
            f"{user}listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.base}/\n"
            f"{self.extra_config}\n"
        )

    def start(self) -> None:
        """Start the broker (on the same port and persistence as before, if restarted) and wait until it listens."""
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise ServiceError("mosquitto not found: install the 'mosquitto' package (scripts/test.sh does)")
        self.base.mkdir(parents=True, exist_ok=True)
        conf = self.base / "mosquitto.conf"
        conf.write_text(self._config())
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for the broker's lifetime
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            wait_port(self.port, proc=self.proc)
        except ServiceError as exc:
            raise ServiceError(f"{exc}; mosquitto said:\n{self.log_path.read_text(errors='replace')}") from None

    def stop(self) -> None:
        """Stop the broker (SIGTERM: it saves its persistence database first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self._closed()

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash would: nothing is saved since its last autosave."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._closed()

    def restart(self) -> None:
        """Stop and start again on the same port with the same persistence directory."""
        self.stop()
        self.start()

    def reload(self, timeout: float = 10.0) -> None:
        """SIGHUP: reread the password file and ACL; returns once the broker has started the reload."""
        if self.proc is None or self.proc.poll() is not None:
            raise ServiceError("mosquitto is not running")
        offset = self.log_path.stat().st_size
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        # mosquitto logs this line and then reloads in the same step of its single-threaded loop, so any
        # connection made after the line is seen is checked against the new files.
        while b"Reloading config." not in self.log_path.read_bytes()[offset:]:
            if time.monotonic() > deadline:
                raise ServiceError(f"mosquitto did not reload within {timeout} s")
            time.sleep(0.01)

    def _closed(self) -> None:
        if self.proc is not None and not self._log.closed:
            self._log.close()
