"""The console in a real browser: Debian's Chromium driven by Playwright against a live waitress server, with
the worker, a real mosquitto (secured with the server's broker files) and a real terminal process holding the
face engine. One stack per test module; each test gets a fresh browser context (its own cookies)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
import tomli_w
from flask import Flask
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS
from server.app import create_app
from server.extensions import db
from server.models import AccessGroup, ConsoleRole, Person, Site, utcnow
from server.services.access import access, sites
from server.services.access.sites import DoorMethods
from server.services.accounts import users
from terminals import control
from tests.conftest import PASSWORD, TEST_ACTOR, server_config
from tests.integration.conftest import SecureBroker
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for
from tests.support.faces import MODEL_DIRS
from tests.support.privacy import enable_face

ENGINE = "insightface"
SITE_NAME = "Maple Court"
DOOR_NAME = "Front gate"
GROUP_NAME = "Residents"
TERMINAL_NAME = "Front gate terminal"
ADMIN = "admin"
MANAGER = "wang.fang"
# Chromium as a test browser: no sandbox (containers, root), no GPU, and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]
REPO = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    """Debian's Chromium, or the browser $GATEHOUSE_CHROMIUM names (Playwright never downloads one here)."""
    named = os.environ.get("GATEHOUSE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    return found


def screenshot_dir() -> Path:
    """Where the console's screenshots go: $GATEHOUSE_ARTIFACTS/screenshots, else artifacts/screenshots."""
    base = os.environ.get("GATEHOUSE_ARTIFACTS")
    path = (Path(base) if base else REPO / "artifacts") / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing_browser(reason: str) -> NoReturn:
    # scripts/test.sh sets GATEHOUSE_REQUIRE_BROWSER=1: there a missing browser fails instead of skipping.
    if os.environ.get("GATEHOUSE_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}; install Debian's chromium package (scripts/test.sh does)")
    pytest.skip(reason)


def empty_door_video(base: Path) -> Path:
    """A short MJPEG video of the empty door, for the terminal's camera to read in a loop."""
    import cv2
    import numpy as np

    path = base / "empty-door.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15, (640, 480))
    assert writer.isOpened(), "OpenCV cannot write an MJPEG video"
    rng = np.random.default_rng(0)
    for _ in range(15):
        noise = rng.integers(-3, 4, size=(480, 640, 3), dtype=np.int16)
        writer.write(np.clip(90 + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


class LiveServer:
    """The console served by waitress on a free loopback port, in a thread of this process."""

    def __init__(self, app: Flask) -> None:
        from waitress import create_server

        self._httpd: Any = create_server(app, host="127.0.0.1", port=0, threads=8, channel_request_lookahead=1)
        self.url = f"http://127.0.0.1:{self._httpd.effective_port}"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # close() while waitress is still polling its sockets
            self._httpd.run()

    def start(self) -> None:
        """Serve until close()."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.close()
        self._thread.join(10)


class Stack:
    """Everything a console user touches: site, door, group, users, broker, worker, server and terminal."""

    def __init__(self, app: Flask, keys: ServerKeys, key_dir: Path, db_url: str, base: Path) -> None:
        self.app = app
        self.keys = keys
        self.key_dir = key_dir
        self.db_url = db_url
        self.base = base
        self.broker: SecureBroker | None = None
        self.rig: SyncRig | None = None
        self.server: LiveServer | None = None
        self.terminal: TerminalHandle
        self.site_id = self.door_id = self.group_id = 0

    def start(self) -> None:
        """Make the site and users, then start broker, worker, terminal process and console (close() stops)."""
        site = sites.create_site(db.session, TEST_ACTOR, code="maple-court", name=SITE_NAME)
        door = sites.save_door(db.session, TEST_ACTOR, site, DOOR_NAME, DoorMethods(face=True))
        group = access.create_group(db.session, TEST_ACTOR, site, GROUP_NAME, [door], ALWAYS.windows)
        users.create_user(db.session, TEST_ACTOR, ADMIN, PASSWORD, ConsoleRole.ADMIN)
        users.create_user(db.session, TEST_ACTOR, MANAGER, PASSWORD, ConsoleRole.MANAGER)
        db.session.commit()
        self.site_id, self.door_id, self.group_id = site.id, door.id, group.id

        self.broker = SecureBroker(self.app, self.base / "broker")
        self.broker.start()
        face = {"engine": ENGINE, "model_dir": str(MODEL_DIRS[ENGINE])}
        config = server_config(self.db_url, self.key_dir, mqtt=self.broker.server_mqtt(), face=face)
        console_app = create_app(config, keys=self.keys)
        # Loading the server's engine now (seconds) names the model the site switches face on for.
        model_id = console_app.extensions["gatehouse"].face.model().model_id
        enable_face(site, model_id)

        self.rig = SyncRig(self.app, self.keys, self.key_dir, self.broker, self.base / "rig")
        self.terminal = self.rig.add_terminal(site, [door], TERMINAL_NAME)
        # The door camera films an empty gateway (a looping video file): the face engine runs for real.
        self.terminal.document["cameras"] = [{"door": door.id, "device": str(empty_door_video(self.base)), "qr": False}]
        self.terminal.document["face"] = face
        self.terminal.config_path.write_text(tomli_w.dumps(self.terminal.document))
        self.rig.start_worker()
        self.terminal.spawn()
        self.server = LiveServer(console_app)
        self.server.start()
        wait_for(self.terminal.in_sync, timeout=60, what="terminal process online and in sync")
        seen: dict[str, Any] = {}

        def face_ready() -> bool:
            seen.update(self.face_status())
            return seen.get("state") == "ready"

        try:
            wait_for(face_ready, timeout=90, what="the terminal's face engine")
        except AssertionError as exc:
            log = (self.terminal.dir / "process.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"{exc}; last face status {seen}; terminal log:\n{log}") from None

    @property
    def url(self) -> str:
        """The console's base URL."""
        assert self.server is not None
        return self.server.url

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request to the terminal process's control socket."""
        return control.send(Path(self.terminal.document["control_socket"]), request)

    def face_status(self) -> dict[str, Any]:
        """The terminal's face report (state, templates held), {} while it cannot answer."""
        try:
            face: dict[str, Any] = self.control({"op": "status"}).get("face", {})
        except (OSError, ValueError):
            return {}
        return face

    def present_card(self, uid: str) -> dict[str, Any]:
        """Present a card UID at the terminal's door, as its reader would."""
        return self.control({"op": "card", "uid": uid, "door": self.door_id})

    def person(self, person_id: int) -> Person:
        """A person as committed now."""
        db.session.expire_all()
        found = db.session.get(Person, person_id)
        assert found is not None
        return found

    def person_named(self, name: str) -> Person | None:
        """The person with this full name, if the console created one."""
        db.session.expire_all()
        return db.session.scalar(select(Person).where(Person.full_name == name))

    def site(self) -> Site:
        """The test site as committed now."""
        db.session.expire_all()
        found = db.session.get(Site, self.site_id)
        assert found is not None
        return found

    def close(self) -> None:
        """Stop the server, terminal, worker and broker."""
        if self.server is not None:
            self.server.close()
        if self.rig is not None:
            self.rig.close()
        if self.broker is not None:
            self.broker.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, key_dir: Path, keys: ServerKeys) -> Iterator[Stack]:
    """The live console with its worker, broker and a terminal process, for one test module (SQLite)."""
    base = tmp_path_factory.mktemp("e2e")
    db_url = f"sqlite:///{base / 'gatehouse.db'}"
    app = create_app(server_config(db_url, key_dir), keys=keys, testing=True)
    with app.app_context():
        db.create_all()
        made = Stack(app, keys, key_dir, db_url, base)
        try:
            made.start()
            yield made
        finally:
            made.close()
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system, launched by Playwright (which downloads nothing)."""
    executable = chromium_path()
    if executable is None:
        _missing_browser("no chromium executable found")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _console_message(problems: list[str], msg: Any) -> None:
    # A 401 or 422 answer to a bad form is logged as a failed load: that is the page working, not a fault.
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        problems.append(f"console {msg.type}: {msg.text}")


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A fresh browser context and page on the live console; scripts must not fail or break the CSP."""
    context = browser.new_context(
        base_url=stack.url, locale="en-US", viewport={"width": 1280, "height": 900}, accept_downloads=False
    )
    context.set_default_timeout(15_000)
    problems: list[str] = []
    opened = context.new_page()
    opened.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    opened.on("console", lambda msg: _console_message(problems, msg))
    try:
        yield opened
    finally:
        context.close()
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def shots() -> Path:
    """The screenshot directory (test artifacts)."""
    return screenshot_dir()


# ---- a console with something on every page (screenshots, Lighthouse) ----------------------------------------------

ADMIN_ZH = "admin.zh"  # an admin who switches the console to Chinese (a user's language is remembered per user)
SHOWCASE_RESIDENT = "Zhang Min"
SHOWCASE_CARD = "04B1C2D3E4F5A6"


@dataclass
class Showcase:
    """The live stack plus a resident with a card, a group, consent and a face template, a visitor pass, a
    holiday and door events the terminal really made (a card let in, an unknown card refused)."""

    stack: Stack
    person_id: int
    terminal_id: int
    site_id: int

    @property
    def url(self) -> str:
        """The console's base URL."""
        return self.stack.url


@pytest.fixture(scope="module")
def showcase(stack: Stack, keys: ServerKeys) -> Showcase:
    """The module's stack seeded through the services, so every main console page has something to show."""
    from gatehouse_core.wire.messages import Decision
    from server.config import FaceServerConfig
    from server.models import AccessEvent, ConsentChannel
    from server.services.face import consent
    from server.services.face.enrollment import EnrollmentEngine, enroll_photo
    from server.services.people import credentials, people
    from server.services.privacy import privacy
    from server.services.visitors import passes
    from tests.support.faces import people_with, photos_of

    site, now = stack.site(), utcnow()
    door = next(d for d in site.doors if d.id == stack.door_id)
    group = db.session.get(AccessGroup, stack.group_id)
    assert group is not None
    person = people.create_person(
        db.session,
        TEST_ACTOR,
        site,
        full_name=SHOWCASE_RESIDENT,
        unit="3-201",
        date_of_birth=date(1980, 5, 17),
        phone="+86 138 0000 0000",
    )
    people.create_person(db.session, TEST_ACTOR, site, full_name="Li Wei", unit="5-102")
    access.add_member(db.session, TEST_ACTOR, group, person)
    credentials.add_card(db.session, TEST_ACTOR, keys, person, SHOWCASE_CARD)
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    given = consent.give_consent(
        db.session, TEST_ACTOR, person, notice_sha256=notice.sha256, channel=ConsentChannel.DESK
    )
    engine = EnrollmentEngine(FaceServerConfig.model_validate({"engine": ENGINE, "model_dir": MODEL_DIRS[ENGINE]}))
    photo = photos_of(people_with(1)[0])[0].read_bytes()
    enroll_photo(db.session, TEST_ACTOR, keys, engine.model(), person, given, photo, engine.limits)
    passes.issue_pass(
        db.session, TEST_ACTOR, keys, person, "Wang Fang", now + timedelta(hours=1), now + timedelta(hours=5), [door], 2
    )
    access.add_holiday(db.session, TEST_ACTOR, site, date.today() + timedelta(days=30), "Spring Festival")
    users.create_user(db.session, TEST_ACTOR, ADMIN_ZH, PASSWORD, ConsoleRole.ADMIN)
    db.session.commit()
    made = Showcase(stack=stack, person_id=person.id, terminal_id=stack.terminal.id, site_id=site.id)

    # Real door events: the card once it reached the terminal, and a card nobody holds.
    wait_for(stack.terminal.in_sync, timeout=60, what="the resident's card on the terminal")
    wait_for(lambda: stack.present_card(SHOWCASE_CARD.lower()).get("granted") is True, what="the card letting in")
    stack.present_card("04deadbeef0001")

    def uploaded() -> bool:
        db.session.expire_all()
        decisions = db.session.scalars(select(AccessEvent.decision)).all()
        return Decision.GRANT in decisions and Decision.DENY in decisions

    wait_for(uploaded, timeout=60, what="the door events uploaded to the server")
    return made
