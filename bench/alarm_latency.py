"""Door forced at the terminal -> alarm on a guard's operations screen, through every real part.

    python -m bench.alarm_latency [--alarms 100]

A real `gatehouse terminal run` process serves a door with a simulated contact; mosquitto (TLS, passwords,
per-terminal ACL), the worker (`gatehouse server worker`) and the console (`gatehouse server run`, waitress)
each run as processes of their own, as in production. A guard is logged in over HTTP and reads
/operations/stream. Each round opens the door at the simulated contact without a grant (the terminal's control
socket, as `gatehouse terminal door` does) and times until the stream delivers the new alarm (`alarm_ms`), and
the door board's forced_open state (`door_ms`); the door is then closed and the alarm's end awaited before the
next round. Goal: alarm_ms p95 <= 1000 on this machine.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import tomli_w

from bench.report import emit, summary
from bench.sync_rig import HOST, Deployment, free_port, wait_until
from server.extensions import db
from server.models import ConsoleRole, DoorLiveState
from server.services.accounts import users
from server.services.audit import Actor
from terminals import control

ACTOR = Actor("bench")
GUARD = "bench-guard"
GOAL_MS = 1000.0
WAIT_S = 15.0


class Screen:
    """A guard's operations screen over HTTP: logs in, reads the event stream, queues what it receives."""

    def __init__(self, url: str, password: str) -> None:
        self.url = url
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = self.opener.open(f"{url}/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        if token is None:
            raise SystemExit("the login page has no CSRF token")
        form = urllib.parse.urlencode({"username": GUARD, "password": password, "csrf_token": token.group(1)})
        landed = self.opener.open(f"{url}/login", data=form.encode(), timeout=10)
        if not landed.geturl().endswith("/operations"):
            raise SystemExit(f"the guard landed on {landed.geturl()}, not the operations screen")
        self.events: queue.Queue[tuple[str, dict[str, Any], float]] = queue.Queue()
        self.seen: list[tuple[str, dict[str, Any], float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        last = ""
        while not self._stop.is_set():
            stream_url = f"{self.url}/operations/stream"
            request = urllib.request.Request(stream_url, headers={"Last-Event-ID": last})  # noqa: S310  (loopback)
            with self.opener.open(request, timeout=60) as stream:
                kind = ""
                for raw in stream:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("id: "):
                        last = line[4:]
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        self.events.put((kind, json.loads(line[6:]), time.monotonic()))
                        kind = ""
                    if self._stop.is_set():
                        return

    def wait(self, kind: str, check: Any, timeout: float = WAIT_S) -> float:
        """The arrival time of the first `kind` event since the last drain() whose data passes `check`."""
        deadline = time.monotonic() + timeout
        while True:
            for got, data, at in self.seen:
                if got == kind and check(data):
                    return at
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"no {kind} event on the stream within {timeout} s")
            try:
                self.seen.append(self.events.get(timeout=left))
            except queue.Empty:
                continue

    def drain(self) -> None:
        """Forget what has arrived so far."""
        while not self.events.empty():
            self.events.get_nowait()
        self.seen.clear()

    def close(self) -> None:
        """Stop reading (the thread ends with the stream's next line)."""
        self._stop.set()


def spawn(deployment: Deployment, args: list[str], log: str) -> subprocess.Popen[bytes]:
    """A `gatehouse` command in a process of its own, stopped with the deployment."""
    with open(deployment.base / log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", *args], stdout=out, stderr=out)
    deployment.children.append(proc)
    return proc


def door_state(deployment: Deployment, door_id: int) -> str | None:
    """The door's live state as the server knows it."""
    with deployment.app.app_context():
        row = db.session.get(DoorLiveState, door_id)
        state = row.state.value if row is not None else None
        db.session.remove()
    return state


def run(deployment: Deployment, rounds: int) -> dict[str, Any]:
    """Set everything up, then force the door `rounds` times and time each alarm to the screen."""
    (door_id,) = deployment.site("bench", doors=1, face=False)
    (terminal_toml,) = deployment.provision("bench", [[door_id]])
    document = tomllib.loads(terminal_toml.read_text())
    socket_path = Path(tempfile.mkdtemp(prefix="gh-alarm-")) / "control.sock"  # AF_UNIX paths are short
    document.update(
        {
            "control_socket": str(socket_path),
            "relay": {"driver": "simulated", "pulse_ms": 200},
            "door_inputs": {"driver": "simulated"},
            "doors": [{"door": door_id, "contact_line": 1, "rex_line": 2, "held_open_seconds": 3600}],
        }
    )
    terminal_toml.write_text(tomli_w.dumps(document))
    password = secrets.token_urlsafe(16)
    with deployment.app.app_context():
        users.create_user(db.session, ACTOR, GUARD, password, ConsoleRole.GUARD)
        db.session.commit()
        db.session.remove()
    deployment.start_broker()
    deployment.spawn_worker()
    port = free_port()
    server_toml = deployment.base / "console.toml"
    console = deployment.config.model_dump(mode="json", exclude_none=True)
    console["http"] = {"host": HOST, "port": port, "threads": 8}
    server_toml.write_text(tomli_w.dumps(console))
    spawn(deployment, ["server", "run", "--config", str(server_toml)], "console.log")
    spawn(deployment, ["terminal", "run", "--config", str(terminal_toml)], "terminal.log")
    wait_until(lambda: socket_path.exists(), 60, "the terminal's control socket")
    wait_until(lambda: door_state(deployment, door_id) == "locked", 60, "the door's state on the server")
    url = f"http://{HOST}:{port}"
    wait_until(lambda: _answers(url), 60, "the console answering")
    screen = Screen(url, password)
    time.sleep(1.0)  # the stream connected
    alarm_ms: list[float] = []
    door_ms: list[float] = []
    try:
        for _ in range(rounds):
            screen.drain()
            started = time.monotonic()
            answer = control.send(socket_path, {"op": "door", "door": door_id, "action": "open"})
            if answer.get("state") != "forced_open":
                raise SystemExit(f"the door did not read as forced open: {answer}")
            raised = screen.wait("alarm", lambda d: d.get("step") == "alarm.raised")
            alarm_ms.append((raised - started) * 1000)
            board = screen.wait("door", lambda d: d.get("door") == door_id and d.get("state") == "forced_open")
            door_ms.append((board - started) * 1000)
            screen.drain()
            control.send(socket_path, {"op": "door", "door": door_id, "action": "close"})
            screen.wait("alarm", lambda d: d.get("step") == "alarm.resolved")
    finally:
        screen.close()
    return {"alarms": len(alarm_ms), "alarm_ms": summary(alarm_ms), "door_ms": summary(door_ms)}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310  (our own loopback URL)
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=100, help="rounds: door forced, alarm seen, door closed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatehouse-alarms-") as tmp:
        deployment = Deployment(Path(tmp))
        try:
            figures = run(deployment, args.alarms)
        finally:
            deployment.close()
    alarm, door = figures["alarm_ms"], figures["door_ms"]
    met = alarm["p95"] <= GOAL_MS
    emit(
        "alarm_latency",
        [
            ("alarms", str(figures["alarms"])),
            (
                "forced -> alarm on screen, ms",
                f"p50 {alarm['p50']:.0f}  p95 {alarm['p95']:.0f}  max {alarm['max']:.0f}",
            ),
            ("forced -> door board, ms", f"p50 {door['p50']:.0f}  p95 {door['p95']:.0f}  max {door['max']:.0f}"),
            ("load average (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"),
            ("goal", f"alarm p95 <= {GOAL_MS:.0f} ms ({'met' if met else 'NOT MET'})"),
        ],
        {**figures, "goal_ms": GOAL_MS, "met": met},
    )


if __name__ == "__main__":
    main()
