"""Attack (on trust): follow the README's "Setting up a site (production)" to the letter on a fresh machine.

The test reads that section's shell block, joins continued lines, and runs every command in order with bash
from a throwaway folder, on a fresh SQLite install, as the installed `gatehouse` and `gatehouse-terminal`.
Only paths are rewritten: `/etc/` and `/var/` become folders under the temporary directory, and
`/etc/gatehouse-terminal/` becomes `./north-gate/`, the folder `gatehouse terminal add` wrote (the block's
comment asks for it to be copied there; here server and terminal share one machine). The one thing the README
asks for before the block, the server config, is written from `config/server.example.toml` with the same
rewrite, SQLite and a free console port. The long-running commands (`server run`, `server worker`,
`gatehouse-terminal run`) are started and checked to come up (the console answers /healthz, the terminal
answers `status` on its control socket, the worker is still running), then stopped with SIGTERM. No broker
is started: `broker.site.lan` does not resolve here, and terminals and the worker decide and wait offline.
The door commands are also checked to refuse a door where face would stand alone, and change nothing.
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.daemons import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LONG_RUNNING = ("gatehouse server run", "gatehouse server worker", "gatehouse-terminal run")
STARTUP = 60.0


def readme_block() -> list[str]:
    """The commands of the production block, continuation lines joined, comment lines dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Setting up a site (production)\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the production section has no ```sh block"
    joined = match.group(1).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def rewrite(command: str, root: Path) -> str:
    """Move /etc and /var under `root`; the terminal's config folder is the one `terminal add` wrote."""
    assert not re.search("/(etc|var)/", str(root)), root
    command = command.replace("/etc/gatehouse-terminal/", f"{root}/north-gate/")
    moved = command.replace("/etc/", f"{root}/etc/").replace("/var/", f"{root}/var/")
    # Nothing may reach the real /etc or /var of the machine running the tests.
    for match in re.finditer("/(etc|var)/", moved):
        assert moved[: match.start()].endswith(str(root)), moved
    return moved


def server_config(root: Path, http_port: int) -> Path:
    """config/server.example.toml as an operator fills it in for SQLite, paths moved under `root`."""
    text = (ROOT / "config" / "server.example.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^database_url = .*$", 'database_url = "sqlite:////var/lib/gatehouse/gatehouse.db"', text)
    text = re.sub(r"(?m)^ca_file = .*$", 'ca_file = "/etc/mosquitto/gatehouse/tls/ca.crt"', text, count=1)
    text = re.sub(r"(?m)^port = 8080$", f"port = {http_port}", text)
    path = root / "etc" / "gatehouse" / "server.toml"
    path.parent.mkdir(parents=True)
    path.write_text(rewrite(text, root), encoding="utf-8")
    return path


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def wait_until(check, what: str, procs: dict[str, subprocess.Popen[bytes]]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            assert proc.poll() is None, f"`{name}` exited with {proc.returncode} while waiting for {what}"
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not come up within {STARTUP} s")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URL we built
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="the README's `--owner mosquitto` needs root, as in production")
def test_readme_production_sequence_runs_verbatim(tmp_path: Path) -> None:
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user: install the mosquitto package (scripts/test.sh does)")
    http_port = free_port()
    config = server_config(tmp_path, http_port)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    env.pop("GATEHOUSE_CONFIG", None)
    commands = readme_block()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        for command in commands:
            local = rewrite(command, tmp_path)
            long_running = next((name for name in LONG_RUNNING if command.startswith(name)), None)
            if long_running is None:
                done = run(local, tmp_path, env)
                assert done.returncode == 0, f"`{command}` failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                continue
            with open(logs / f"{len(procs)}.log", "wb") as log:
                procs[long_running] = subprocess.Popen(
                    ["bash", "-c", f"exec {local}"], cwd=tmp_path, env=env, stdout=log, stderr=log
                )
        assert set(procs) == set(LONG_RUNNING), f"the block should start {LONG_RUNNING}, started {sorted(procs)}"

        wait_until(lambda: healthy(f"http://127.0.0.1:{http_port}/healthz"), "the console", procs)
        terminal_toml = tmp_path / "north-gate" / "terminal.toml"
        status_command = [str(BIN / "gatehouse-terminal"), "status", "--config", str(terminal_toml)]

        def terminal_answers() -> bool:
            done = subprocess.run(status_command, capture_output=True, text=True, env=env, check=False)
            return done.returncode == 0

        wait_until(terminal_answers, "the terminal's control socket", procs)
        status = subprocess.run(status_command, capture_output=True, text=True, env=env, check=True)
        assert "terminal" in status.stdout, status.stdout
        for name, proc in procs.items():
            assert proc.poll() is None, f"`{name}` exited with {proc.returncode}"

        door_list = "gatehouse door list --config /etc/gatehouse/server.toml --site maple-court"
        listing = run(rewrite(door_list, tmp_path), tmp_path, env)
        assert "North gate" in listing.stdout and "Garage" in listing.stdout
        north = next(line for line in listing.stdout.splitlines() if "North gate" in line)
        assert north.endswith("face, key card, ID document, app code"), north
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        stopped = {}
        for name, proc in procs.items():
            try:
                stopped[name] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                stopped[name] = "killed"
    output = "\n".join(p.read_text(errors="replace") for p in sorted(logs.iterdir()))
    assert all(code == 0 for code in stopped.values()), f"not stopped cleanly: {stopped}\n{output}"
    assert config.exists()


def test_door_commands_never_make_face_the_only_way_in(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.cli.main import main

    config = tmp_path / "server.toml"
    config.write_text(f'mode = "development"\ndatabase_url = "sqlite:///{tmp_path}/gatehouse.db"\nkey_dir = "keys"\n')
    runner = CliRunner()

    def gatehouse(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, [args[0], args[1], "--config", str(config), *args[2:]], prog_name="gatehouse")
        return result.exit_code, result.output

    site = ("--site", "maple-court")
    for step in (
        ("db", "upgrade"),
        ("site", "create", "--code", "maple-court", "--name", "Maple Court"),
        ("door", "create", *site, "--name", "Pool"),
    ):
        code, output = gatehouse(*step)
        assert code == 0, output
    for refused in (
        ("door", "create", *site, "--name", "Gym", "--face", "--no-card"),
        ("door", "create", *site, "--name", "Spa", "--face", "--no-id-document", "--no-app-code"),
        ("door", "set-methods", *site, "--door", "Pool", "--face", "--no-app-code"),
        ("door", "set-methods", *site, "--door", "Pool", "--no-card", "--face"),
    ):
        code, output = gatehouse(*refused)
        assert code != 0, refused
        assert "must also accept key card, ID document and app code" in output
    code, output = gatehouse("door", "list", *site)
    assert output.strip().splitlines()[-1].endswith("Pool\tkey card, ID document, app code"), output
    code, output = gatehouse("door", "set-methods", *site, "--door", "Nowhere", "--face")
    assert code != 0 and "no door named 'Nowhere'" in output
    code, output = gatehouse("door", "set-methods", *site, "--door", "Pool", "--face")
    assert code == 0 and output.strip().endswith("Pool\tface, key card, ID document, app code"), output
