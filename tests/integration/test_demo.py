"""`gatehouse demo` as a new user runs it: URL within 60 s, login works, terminal online, the phone-app API
answers and its printed sign-in works, Ctrl-C stops all."""

from __future__ import annotations

import http.cookiejar
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import csrf_token
from tests.support.daemons import free_port

pytestmark = pytest.mark.integration


class OutputReader:
    """Collects a child's output lines on a thread, so waiting never blocks on a pipe."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def until(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait for a line matching `pattern`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output:\n{''.join(self.seen)}")

    def rest(self) -> str:
        """Everything printed after the last match (call once the process has exited)."""
        self._thread.join(10)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return "".join(out)


def test_demo_starts_serves_shows_terminal_online_and_stops(tmp_path):
    http_port, mqtt_port, api_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--http-port",
            str(http_port),
            "--mqtt-port",
            str(mqtt_port),
            "--api-port",
            str(api_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = OutputReader(proc)
    try:
        started = time.monotonic()
        url = output.until(r"Console:\s+(http://\S+)", 60).group(1)
        assert time.monotonic() - started < 60
        password = output.until(r"Password:\s+(\S+)", 5).group(1)
        assert url == f"http://127.0.0.1:{http_port}/"

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login_page = opener.open(url + "login", timeout=5).read().decode()
        form = urllib.parse.urlencode(
            {"username": "admin", "password": password, "csrf_token": csrf_token(login_page)}
        ).encode()
        dashboard = opener.open(url + "login", data=form, timeout=5)
        assert dashboard.url == url and "Dashboard" in dashboard.read().decode()

        deadline = time.monotonic() + 20
        page = ""
        while time.monotonic() < deadline:
            page = opener.open(url + "terminals", timeout=5).read().decode()
            if 'data-status="online"' in page:
                break
            time.sleep(0.3)
        assert 'data-status="online"' in page, page
        assert "gatehouse-terminal/" in page  # the birth message reached the server

        # The README's next step: the printed command presents the first resident's card at the terminal.
        command = output.until(r"(\S+gatehouse terminal present .+)", 5).group(1).split()
        command[0] = str(Path(sys.executable).parent / "gatehouse")
        answer = ""
        while time.monotonic() < deadline + 20:
            answer = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout  # roster may lag
            if "OPEN" in answer:
                break
            time.sleep(0.3)
        assert "OPEN" in answer and "Welcome" in answer, answer

        # The phone-app API: health, its OpenAPI document, and the printed curl sign-in as the demo resident.
        api = output.until(r"Phone-app API:\s+(http://\S+)", 5).group(1)
        assert api == f"http://127.0.0.1:{api_port}/api/v1"
        client = urllib.request.build_opener()
        assert json.load(client.open(api + "/health", timeout=5)) == {"status": "ok", "version": 1}
        openapi = output.until(r"OpenAPI:\s+(http://\S+)", 5).group(1)
        assert "/api/v1/auth/login" in json.load(client.open(openapi, timeout=5))["paths"]
        curl = output.until(r"curl -s -X POST (\S+) -H 'Content-Type: application/json' -d '(.+)'$", 5)
        assert curl.group(1) == api + "/auth/login"
        json_type = {"Content-Type": "application/json"}
        login = urllib.request.Request(curl.group(1), headers=json_type, method="POST")  # noqa: S310 - loopback
        tokens = json.load(client.open(login, data=curl.group(2).encode(), timeout=10))
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = urllib.request.Request(api + "/me", headers=bearer)  # noqa: S310 - loopback
        assert client.open(me, timeout=5).status == 200

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert "Demo stopped." in output.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
