"""`gatehouse demo`: everything in one command on a machine with nothing but Python.

The demo runs the same programs production runs, as child processes (console, worker, terminal,
phone-app API), against SQLite and an embedded amqtt broker bound to loopback. Ctrl-C stops them all.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import tomli_w

from gatehouse_core.keyring import init_keys
from server.ops.demo_seed import DEMO_APP_USER, DEMO_CARD, DEMO_PHONE
from server.ops.embedded_broker import EmbeddedBroker
from server.ops.private_files import private_sqlite
from server.ops.terminal_files import write_terminal_dir

log = logging.getLogger("gatehouse.demo")
STARTUP_TIMEOUT = 60.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    """`preferred` if it is free on loopback, else any free port."""
    if preferred and _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_server_config(data_dir: Path, http_port: int, mqtt_port: int) -> Path:
    """The demo's server.toml: development mode, SQLite in the data directory."""
    document = {
        "mode": "development",
        "database_url": f"sqlite:///{data_dir / 'gatehouse.db'}",
        "key_dir": "keys",
        "log_level": "INFO",
        "http": {"host": "127.0.0.1", "port": http_port, "threads": 4},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
    }
    path = data_dir / "server.toml"
    path.write_text("# Written by `gatehouse demo` on every start.\n" + tomli_w.dumps(document))
    return path


def write_mobile_api_config(data_dir: Path, api_port: int) -> Path:
    """The demo's mobile_api.toml: the same database and keys, sign-in codes written to a spool folder."""
    document = {
        "mode": "development",
        "database_url": f"sqlite:///{data_dir / 'gatehouse.db'}",
        "key_dir": "keys",
        "log_level": "INFO",
        "public_base_url": f"http://127.0.0.1:{api_port}",
        "http": {"host": "127.0.0.1", "port": api_port, "threads": 4},
        "login_codes": {"sender": "spool", "spool_dir": "codes"},
    }
    path = data_dir / "mobile_api.toml"
    path.write_text("# Written by `gatehouse demo` on every start.\n" + tomli_w.dumps(document))
    return path


@dataclass(frozen=True)
class DemoSetup:
    """What `prepare` made: the config files and the passwords printed at start-up."""

    server_toml: Path
    terminal_toml: Path
    mobile_api_toml: Path
    admin_password: str
    app_password: str
    north_door: int  # the simulated terminal's first door (the North gate)


def prepare(data_dir: Path, http_port: int, mqtt_port: int, api_port: int) -> DemoSetup:
    """Keys, schema, seed data, terminal, admin and the demo resident's app account."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from server.app import MIGRATIONS_DIR, create_app
    from server.config import load_server_config
    from server.extensions import db
    from server.models import ConsoleRole, ConsoleUser, Terminal
    from server.ops.demo_seed import DEMO_SITE, seed_app_account, seed_demo
    from server.services.accounts import users
    from server.services.audit import Actor
    from server.services.terminals import terminals
    from server.state import state

    # The demo's data (residents, keys, the terminal's store) is for the user who runs it only.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    server_toml = write_server_config(data_dir, http_port, mqtt_port)
    mobile_api_toml = write_mobile_api_config(data_dir, api_port)
    config = load_server_config(server_toml)
    init_keys(config.key_dir)
    private_sqlite(config.database_url)
    app = create_app(config)
    actor = Actor("demo")
    terminal_dir = data_dir / "terminal"
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        site = seed_demo(db.session, state().keys)
        terminal = db.session.scalar(select(Terminal).where(Terminal.site_id == site.id))
        if terminal is None:
            first_two = sorted(site.doors, key=lambda d: d.id)[:2]  # North gate and East pedestrian gate
            made = terminals.provision_terminal(db.session, actor, site, "North gate terminal", first_two)
            terminal, password = made.terminal, made.mqtt_password
        else:
            password = terminals.rotate_broker_password(db.session, actor, terminal)
        admin = db.session.scalar(select(ConsoleUser).where(ConsoleUser.username == "admin"))
        admin_password = users.generate_password()
        if admin is None:
            users.create_user(db.session, actor, "admin", admin_password, ConsoleRole.ADMIN)
        else:
            users.set_password(db.session, actor, admin, admin_password)
        app_password = seed_app_account(db.session, site)
        db.session.commit()
        write_terminal_dir(terminal_dir, config.key_dir, DEMO_SITE, terminal.ident, password, "127.0.0.1", mqtt_port)
        north = min(d.id for d in terminal.doors)
    return DemoSetup(server_toml, terminal_dir / "terminal.toml", mobile_api_toml, admin_password, app_password, north)


def _wait_http(url: str, deadline: float, children: list[subprocess.Popen[bytes]]) -> bool:
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URL we built  # nosec B310
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def run_demo(data_dir: Path, http_port: int, mqtt_port: int, api_port: int = 8090) -> int:
    """Run the demo until Ctrl-C; returns the exit code."""
    from server.cli.common import setup_logging

    setup_logging("INFO")
    started = time.monotonic()
    http_port, mqtt_port = pick_port(http_port), pick_port(mqtt_port)
    api_port = pick_port(api_port if api_port not in (http_port, mqtt_port) else 0)
    print(f"Preparing the demo in {data_dir} ...", flush=True)
    setup = prepare(data_dir, http_port, mqtt_port, api_port)

    broker = EmbeddedBroker("127.0.0.1", mqtt_port)
    broker.start()
    log.info("embedded MQTT broker on 127.0.0.1:%d", mqtt_port)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cli = [sys.executable, "-m", "server.cli"]
    commands = {
        "console": [*cli, "server", "run", "--config", str(setup.server_toml)],
        "mobile API": [*cli, "mobile-api", "run", "--config", str(setup.mobile_api_toml)],
        "worker": [*cli, "server", "worker", "--config", str(setup.server_toml)],
        "terminal": [*cli, "terminal", "run", "--config", str(setup.terminal_toml)],
    }
    # Own process group per child: Ctrl-C reaches only the demo, which then stops them in order.
    children = {
        name: subprocess.Popen(cmd, start_new_session=True)  # noqa: S603 - our own CLI
        for name, cmd in commands.items()
    }
    code = 0
    try:
        url = f"http://127.0.0.1:{http_port}/"
        api = f"http://127.0.0.1:{api_port}/api/v1"
        deadline = started + STARTUP_TIMEOUT
        for name, health in (("console", url + "healthz"), ("mobile API", api + "/health")):
            if not _wait_http(health, deadline, list(children.values())):
                print(f"error: the {name} did not come up; see the log above", file=sys.stderr)
                return 1
        login = json.dumps({"login": DEMO_APP_USER, "password": setup.app_password, "device": "curl"})
        print(
            "\n"
            "  Gatehouse demo is running.\n"
            f"  Console:  {url}\n"
            "  Login:    admin\n"
            f"  Password: {setup.admin_password}\n"
            f"  MQTT:     127.0.0.1:{mqtt_port} (embedded broker, loopback only)\n"
            "  Present a resident's card at the simulated terminal (North gate) in another shell:\n"
            f"    .venv/bin/gatehouse terminal present --config {setup.terminal_toml} --door {setup.north_door} "
            f"card {DEMO_CARD}\n"
            "\n"
            f"  Phone-app API: {api}\n"
            f"  OpenAPI:       {api}/openapi.json\n"
            f"  App user:      {DEMO_APP_USER} (Wang Wei, 1-101; phone {DEMO_PHONE})\n"
            f"  App password:  {setup.app_password}\n"
            "  Sign in as the resident (the answer holds an access token for 'Authorization: Bearer ...'):\n"
            f"    curl -s -X POST {api}/auth/login -H 'Content-Type: application/json' -d '{login}'\n"
            f"  Sign-in codes sent by text message land as files in {data_dir / 'codes'}\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stop.wait(0.5):
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"error: the {name} process exited with code {child.returncode}", file=sys.stderr)
                    code = 1
                    stop.set()
        return code
    finally:
        print("Stopping ...", flush=True)
        for name in ("terminal", "worker", "mobile API", "console"):
            child = children[name]
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        broker.stop()
        print("Demo stopped.", flush=True)
