"""`gatehouse demo` as a new user runs it: URL within 60 s, login works, terminal online, the phone-app API
answers and its printed sign-in works, the printed face commands open the door for the enrolled resident and not
for a stranger, Ctrl-C stops all, and a restart keeps the ports and the admin password."""

from __future__ import annotations

import http.cookiejar
import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from server.cli.demo import demo as demo_command
from server.ops import demo
from tests.conftest import csrf_token
from tests.support.daemons import free_port
from tests.support.faces import MODELS

REPO = Path(__file__).resolve().parents[2]

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


def start_demo(data_dir: Path, ports: tuple[int, int, int]) -> tuple[subprocess.Popen[str], OutputReader]:
    http_port, mqtt_port, api_port = ports
    args = ["--data-dir", str(data_dir), "--http-port", str(http_port), "--mqtt-port", str(mqtt_port)]
    args += ["--api-port", str(api_port)]
    if MODELS.is_dir():
        args += ["--face-models", str(MODELS)]  # wherever this checkout is, the shared models the tests use
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, OutputReader(proc)


def run_until(command: list[str], done: str, deadline: float) -> str:
    """Run a printed command until its answer says `done` (the terminal's roster or face engine may still load)."""
    command = [str(Path(sys.executable).parent / "gatehouse"), *command[1:]]
    answer = ""
    while time.monotonic() < deadline:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        answer = result.stdout + result.stderr
        if done in answer:
            break
        time.sleep(0.3)
    return answer


def test_demo_starts_serves_shows_terminal_online_and_stops(tmp_path):
    ports = http_port, mqtt_port, api_port = free_port(), free_port(), free_port()
    proc, output = start_demo(tmp_path / "demo", ports)
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
        answer = run_until(command, "OPEN", deadline + 20)  # roster may lag
        assert "OPEN" in answer and "Welcome" in answer, answer

        # Face, where the models are: another photo of the enrolled, consenting resident opens the North gate
        # through the camera's frame pipeline; a stranger's photo does not.
        if MODELS.is_dir():
            output.until(r"Face:\s+on \(", 5)
            resident = output.until(r"(\S+gatehouse terminal present .+ face \S+)", 5).group(1).split()
            stranger = output.until(r"(\S+gatehouse terminal present .+ face \S+)", 5).group(1).split()
            assert resident[-1] != stranger[-1] and Path(resident[-1]).parent != Path(stranger[-1]).parent
            answer = run_until(resident, "OPEN", time.monotonic() + 90)  # the terminal loads the engine meanwhile
            assert "OPEN" in answer and "Welcome" in answer, answer
            answer = run_until(stranger, "stays shut", time.monotonic() + 30)
            assert "stays shut" in answer and "OPEN" not in answer, answer

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
        stop(proc)

    # Started again at once: the same ports (the closed connections linger in TIME_WAIT) and the same password.
    proc, output = start_demo(tmp_path / "demo", ports)
    try:
        assert output.until(r"Console:\s+(http://\S+)", 60).group(1) == url
        assert output.until(r"Password:\s+(\S+)", 5).group(1) == password
        assert output.until(r"MQTT:\s+(\S+)", 5).group(1) == f"127.0.0.1:{mqtt_port}"
        assert output.until(r"Phone-app API:\s+(http://\S+)", 5).group(1) == api
        assert not any(line.startswith("note: port") for line in output.seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def test_demo_script_help_answers_without_building_a_virtualenv(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "demo.sh", tmp_path / "scripts" / "demo.sh")
    for flag in ("--help", "-h"):
        result = subprocess.run(
            ["bash", str(tmp_path / "scripts" / "demo.sh"), flag], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        assert not (tmp_path / ".venv").exists()
        # The script's own help names every option of `gatehouse demo`, so it cannot drift from the command.
        for param in demo_command.params:
            for name in param.opts:
                assert name in result.stdout, name


def test_without_models_the_demo_says_how_to_get_them(tmp_path):
    assert demo.find_face_models(tmp_path) is None
    setup = demo.DemoSetup(
        tmp_path / "server.toml", tmp_path / "terminal.toml", tmp_path / "mobile_api.toml", "pw", "pw", 1
    )
    lines = demo._face_lines(setup, None, tmp_path)
    assert "Face:     off" in lines and "--face-models" in lines and "face_detection_yunet_2023mar.onnx" in lines
