"""`gatehouse demo`: everything in one command on a machine with nothing but Python.

The demo runs the same programs production runs, as child processes (console, worker, terminal,
phone-app API), against SQLite and an embedded amqtt broker bound to loopback. Ctrl-C stops them all.
Where face models are found (../shared/models beside the repository, or --face-models), the demo switches face
on as a site manager would (impact assessment, a bilingual notice), enrolls one resident with consent and gives
the simulated terminal the same engine; everything else runs the same without them.
A restart keeps the ports it was given and the passwords it printed (kept in the data directory).
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
import tomllib
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


OPENCV_FILES = ("face_detection_yunet_2023mar.onnx", "face_recognition_sface_2021dec.onnx")
INSIGHTFACE_FILES = ("det_500m.onnx", "w600k_mbf.onnx")
# Where CI and this project's machines keep models and sample photos: a folder "shared" beside the repository.
SHARED_BESIDE_REPO = Path(__file__).resolve().parents[2].parent / "shared"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind: a port whose last connections linger in TIME_WAIT (the demo's own,
        # just stopped) is free to listen on again.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, what: str = "port") -> int:
    """`preferred` if it is free on loopback, else any free port (saying so)."""
    if preferred and _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    if preferred:
        print(f"note: port {preferred} for the {what} is in use; using {port} instead", flush=True)
    return port


@dataclass(frozen=True)
class FaceModels:
    """A face engine's model folder the demo found."""

    engine: str
    model_dir: Path


def find_face_models(configured: Path | None) -> FaceModels | None:
    """The engine and folder of the face models in `configured` (or ../shared/models): a folder holding the
    .onnx files, or one holding opencv_zoo/ or buffalo_s/. OpenCV's are preferred: their licences allow use."""
    root = configured if configured is not None else SHARED_BESIDE_REPO / "models"
    for folder in (root / "opencv_zoo", root / "buffalo_s", root):
        if all((folder / name).is_file() for name in OPENCV_FILES):
            return FaceModels("opencv", folder.resolve())
        if all((folder / name).is_file() for name in INSIGHTFACE_FILES):
            return FaceModels("insightface", folder.resolve())
    return None


@dataclass(frozen=True)
class SamplePhotos:
    """Photos of two real people: the demo resident's enrollment photos, another of theirs, and a stranger's."""

    enroll: tuple[Path, ...]
    resident: Path
    stranger: Path


def find_sample_photos(faces_dir: Path) -> SamplePhotos | None:
    """Two people of a faces folder (one sub-folder per person), the first with at least three photos."""
    if not faces_dir.is_dir():
        return None

    def photos(person: Path) -> list[Path]:
        return sorted(p for p in person.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})

    people = [photos(d) for d in sorted(faces_dir.iterdir()) if d.is_dir()]
    people = [p for p in people if len(p) >= 3]
    if len(people) < 2:
        return None
    resident, stranger = people[0], people[1]
    return SamplePhotos(tuple(resident[:-1]), resident[-1], stranger[0])


def _kept_secret(path: Path) -> str:
    """A password the demo printed before (kept beside its data), or a new one kept there."""
    from server.services.accounts.users import generate_password

    if path.is_file() and (kept := path.read_text().strip()):
        return kept
    password = generate_password()
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


def write_server_config(data_dir: Path, http_port: int, mqtt_port: int, face: FaceModels | None = None) -> Path:
    """The demo's server.toml: development mode, SQLite in the data directory, the face engine if found."""
    document: dict[str, object] = {
        "mode": "development",
        "database_url": f"sqlite:///{data_dir / 'gatehouse.db'}",
        "key_dir": "keys",
        "log_level": "INFO",
        "http": {"host": "127.0.0.1", "port": http_port, "threads": 8},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
    }
    if face is not None:
        document["face"] = {"engine": face.engine, "model_dir": str(face.model_dir)}
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


def write_terminal_face(terminal_toml: Path, face: FaceModels | None) -> None:
    """Give the simulated terminal the server's face engine (photos are presented through its control socket)."""
    document = tomllib.loads(terminal_toml.read_text())
    document.pop("face", None)
    if face is not None:
        document["face"] = {"engine": face.engine, "model_dir": str(face.model_dir)}
    terminal_toml.write_text("# Written by `gatehouse demo` on every start.\n" + tomli_w.dumps(document))


@dataclass(frozen=True)
class FaceDemo:
    """What the demo did for face: the resident it asked, their face state, the photos to present."""

    resident: str
    state: str
    photos: SamplePhotos | None


@dataclass(frozen=True)
class DemoSetup:
    """What `prepare` made: the config files and the passwords printed at start-up."""

    server_toml: Path
    terminal_toml: Path
    mobile_api_toml: Path
    admin_password: str
    app_password: str
    north_door: int  # the simulated terminal's first door (the North gate, which also takes face)
    face: FaceDemo | None = None


def prepare(
    data_dir: Path, http_port: int, mqtt_port: int, api_port: int, face_models: FaceModels | None = None
) -> DemoSetup:
    """Keys, schema, seed data, terminal, admin, the demo resident's app account and, with models, face."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from server.app import MIGRATIONS_DIR, create_app
    from server.config import load_server_config
    from server.extensions import db
    from server.models import ConsoleRole, ConsoleUser, Terminal
    from server.ops.demo_seed import DEMO_SITE, seed_app_account, seed_demo, setup_face
    from server.services.accounts import users
    from server.services.audit import Actor
    from server.services.terminals import terminals
    from server.state import state

    # The demo's data (residents, keys, the terminal's store) is for the user who runs it only.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    server_toml = write_server_config(data_dir, http_port, mqtt_port, face_models)
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
        admin_password = _kept_secret(data_dir / "admin_password")
        if admin is None:
            users.create_user(db.session, actor, "admin", admin_password, ConsoleRole.ADMIN)
        elif not users.check_password(admin.password_hash, admin_password):
            users.set_password(db.session, actor, admin, admin_password)  # the password the demo prints works
        app_password = _kept_secret(data_dir / "app_password")
        seed_app_account(db.session, site, app_password)
        face = None
        if face_models is not None:
            photos = find_sample_photos(face_models.model_dir.parent.parent / "data" / "faces-dev")
            resident, face_state = setup_face(
                db.session, state().keys, state().face.model(), site, photos.enroll if photos else ()
            )
            face = FaceDemo(f"{resident.full_name}, {resident.unit}", face_state, photos)
        db.session.commit()
        write_terminal_dir(terminal_dir, config.key_dir, DEMO_SITE, terminal.ident, password, "127.0.0.1", mqtt_port)
        write_terminal_face(terminal_dir / "terminal.toml", face_models)
        north = min(d.id for d in terminal.doors)
    return DemoSetup(
        server_toml, terminal_dir / "terminal.toml", mobile_api_toml, admin_password, app_password, north, face
    )


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


def _face_lines(setup: DemoSetup, face_models: FaceModels | None, configured: Path | None) -> str:
    present = f".venv/bin/gatehouse terminal present --config {setup.terminal_toml} --door {setup.north_door} face"
    if face_models is None:
        where = configured if configured is not None else SHARED_BESIDE_REPO / "models"
        return (
            f"  Face:     off - no face models in {where}. To try face, put OpenCV Zoo's YuNet and SFace files\n"
            "            (face_detection_yunet_2023mar.onnx, face_recognition_sface_2021dec.onnx) in a folder and\n"
            "            start the demo with --face-models FOLDER (README, 'Face engine'). Card, ID and code work.\n"
        )
    lines = f"  Face:     on ({face_models.engine} engine, {face_models.model_dir}); the North gate also takes face\n"
    face = setup.face
    if face is None or face.photos is None or face.state != "enrolled":
        state = face.state if face is not None else "not asked"
        return lines + (
            f"  No demo resident enrolled (sample photos not found, or face state '{state}'). Enroll one with\n"
            f"    gatehouse consent give / gatehouse face enroll --config {setup.server_toml} ... (README)\n"
            f"  and present a photo at the North gate's camera with\n    {present} PHOTO\n"
        )
    return lines + (
        f"  {face.resident} consented and is enrolled (from {face.photos.enroll[0].parent.name}'s photos).\n"
        "  Present another photo of that person at the North gate's camera (the door opens):\n"
        f"    {present} {face.photos.resident}\n"
        "  and a stranger's photo (the door stays shut; card, ID and code still work):\n"
        f"    {present} {face.photos.stranger}\n"
    )


def run_demo(data_dir: Path, http_port: int, mqtt_port: int, api_port: int = 8090, face_dir: Path | None = None) -> int:
    """Run the demo until Ctrl-C; returns the exit code."""
    from server.cli.common import setup_logging

    setup_logging("INFO")
    started = time.monotonic()
    http_port, mqtt_port = pick_port(http_port, "console"), pick_port(mqtt_port, "MQTT broker")
    api_port = pick_port(api_port if api_port not in (http_port, mqtt_port) else 0, "phone-app API")
    face_models = find_face_models(face_dir)
    print(f"Preparing the demo in {data_dir} ...", flush=True)
    setup = prepare(data_dir, http_port, mqtt_port, api_port, face_models)

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
            f"  Password: {setup.admin_password}  (kept in {data_dir / 'admin_password'})\n"
            f"  MQTT:     127.0.0.1:{mqtt_port} (embedded broker, loopback only)\n"
            "  Present a resident's card at the simulated terminal (North gate) in another shell:\n"
            f"    .venv/bin/gatehouse terminal present --config {setup.terminal_toml} --door {setup.north_door} "
            f"card {DEMO_CARD}\n"
            f"{_face_lines(setup, face_models, face_dir)}"
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
