"""The operations screen live in real Chromium: an event stored by the real ingest appears in the feed without a
reload, a new alarm appears in the inbox, and a browser whose stream was cut by a server restart while 50 events
were stored catches up all 50, each once, in order, when the server is back (EventSource's Last-Event-ID).

The console runs as `gatehouse server run` (waitress, as in production) on a fixed loopback port, so the
restarted process answers at the same address; no broker or terminal process: the events go through the
worker's ingest function, as the worker stores them."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from flask import Flask
from flask_migrate import stamp
from playwright.sync_api import Browser, Page, expect

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.app import create_app
from server.extensions import db
from server.link import event_ingest
from server.models import AlarmKind, AlarmSeverity, ConsoleRole, utcnow
from server.services.access import sites
from server.services.accounts import users
from server.services.operations import alarms
from server.services.terminals import terminals
from tests.conftest import PASSWORD, TEST_ACTOR, server_config
from tests.e2e.test_accessibility import audit
from tests.integration.sync_rig import wait_for

pytestmark = [pytest.mark.integration]

GUARD = "guard.li"
CATCH_UP = 50


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """`gatehouse server run` in a process of its own (waitress, as in production); stop() ends the process, and
    with it every open connection, as a restart does."""

    def __init__(self, config_path: Path, port: int, log: Path) -> None:
        with open(log, "ab") as out:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "server", "run", "--config", str(config_path)],
                stdout=out,
                stderr=out,
            )
        wait_for(lambda: self._listening(port), timeout=60, what="the console process listening")

    def _listening(self, port: int) -> bool:
        assert self._proc.poll() is None, "the console process exited"
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def stop(self) -> None:
        """End the process."""
        self._proc.terminate()
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(15)


@dataclass
class Console:
    """The live console and what the tests store into it."""

    app: Flask
    config_path: Path
    port: int
    sender: event_ingest.Sender
    door_id: int
    server: Server | None = None

    @property
    def url(self) -> str:
        """The console's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve (again) on the same port."""
        self.server = Server(self.config_path, self.port, self.config_path.parent / "console.log")

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def store(self, n: int) -> list[str]:
        """Store `n` access events through the worker's ingest function; their uids."""
        records = [
            EventRecord(
                uid=str(uuid.uuid4()),
                door=self.door_id,
                method=EntryMethod.CARD,
                decision=Decision.GRANT,
                reason="granted",
                person=f"p-{uuid.uuid4().hex[:16]}",
                at=utcnow(),
            )
            for _ in range(n)
        ]
        event_ingest.ingest(db.session, [(self.sender, records)])
        db.session.commit()
        return [r.uid for r in records]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, key_dir: Path, keys: ServerKeys) -> Iterator[Console]:
    """A site with a door and its terminal, a guard, and the console serving them (SQLite)."""
    base = tmp_path_factory.mktemp("ops-e2e")
    db_url = f"sqlite:///{base / 'gatehouse.db'}"
    port = free_port()
    config = server_config(db_url, key_dir, http={"host": "127.0.0.1", "port": port, "threads": 4})
    config_path = base / "server.toml"
    config_path.write_text(tomli_w.dumps(config.model_dump(mode="json", exclude_none=True)))
    app = create_app(config, keys=keys, testing=True)
    with app.app_context():
        db.create_all()
        stamp()  # the console process insists on a migrated schema
        site = sites.create_site(db.session, TEST_ACTOR, code="maple", name="Maple Court")
        door = sites.save_door(db.session, TEST_ACTOR, site, "Front gate", sites.DoorMethods())
        terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Gate terminal", [door]).terminal
        users.create_user(db.session, TEST_ACTOR, GUARD, PASSWORD, ConsoleRole.GUARD)
        db.session.commit()
        made = Console(
            app=app,
            config_path=config_path,
            port=port,
            sender=event_ingest.Sender(terminal.id, site.id, frozenset({door.id})),
            door_id=door.id,
        )
        made.start()
        try:
            yield made
        finally:
            made.stop()
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def guard_page(browser: Browser, console: Console) -> Iterator[Page]:
    """A guard logged in on the operations screen; scripts must not fail (network errors while the server is
    down are expected)."""
    context = browser.new_context(base_url=console.url, locale="en-US", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(20_000)
    problems: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    try:
        page.goto("/login")
        page.get_by_label("Username").fill(GUARD)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/operations$"))  # a guard's home page
        expect(page.locator("#ops-live")).to_have_attribute("data-state", "live")
        yield page
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def feed_ids(page: Page) -> list[int]:
    """The feed ids of the rows in the live feed, top to bottom."""
    ids: list[str] = page.locator("#feed-rows tr[data-feed]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-feed'))"
    )
    return [int(i) for i in ids]


def stored_feed_ids(console: Console, after: int) -> list[int]:
    """Feed ids stored after `after`, oldest first."""
    from server.services.operations import feed

    db.session.expire_all()
    return [item.id for item in feed.items_after(db.session, after, limit=1000)]


def test_stored_event_appears_without_reload(guard_page: Page, console: Console) -> None:
    page = guard_page
    page.evaluate("window.__notReloaded = true")
    before = max(feed_ids(page), default=0)
    console.store(1)
    (new,) = stored_feed_ids(console, before)
    row = page.locator(f'#feed-rows tr[data-feed="{new}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Front gate")
    expect(row).to_contain_text("Granted")
    assert page.evaluate("window.__notReloaded") is True
    assert feed_ids(page)[0] == new  # at the top


def test_new_alarm_appears_in_the_inbox(guard_page: Page, console: Console) -> None:
    page = guard_page
    raised = alarms.raise_alarm(
        db.session,
        AlarmKind.DOOR_FORCED,
        str(uuid.uuid4()),
        severity=AlarmSeverity.CRITICAL,
        site_id=console.sender.site_id,
        door_id=console.door_id,
        terminal_id=console.sender.terminal_id,
        message="Front gate opened without a grant.",
    )
    db.session.commit()
    assert raised is not None
    item = page.locator(f'#alarm-list li[data-alarm="{raised.id}"]')
    expect(item).to_be_visible()
    expect(item).to_contain_text("Door forced open")
    expect(item.get_by_role("button", name="Acknowledge")).to_be_visible()
    expect(page.locator("#alarm-empty")).to_be_hidden()


def test_page_with_an_alarm_and_entries_passes_axe(guard_page: Page, console: Console) -> None:
    page = guard_page
    raised = alarms.raise_alarm(
        db.session,
        AlarmKind.DOOR_HELD_OPEN,
        str(uuid.uuid4()),
        site_id=console.sender.site_id,
        door_id=console.door_id,
        message="Front gate held open.",
    )
    db.session.commit()
    assert raised is not None
    console.store(2)
    expect(page.locator(f'#alarm-list li[data-alarm="{raised.id}"]')).to_be_visible()
    audit(page, "operations (live rows inserted)")
    page.reload()
    audit(page, "operations (first paint)")
    # Browsers allow sound after a click on the page: until then the switch says so; then it toggles, remembered.
    sound = page.locator("#ops-sound")
    expect(sound).to_have_attribute("aria-pressed", "true")
    expect(sound).to_have_text("Click to allow sound")
    sound.click()
    expect(sound).to_have_text("Sound on")
    sound.click()
    expect(sound).to_have_attribute("aria-pressed", "false")
    expect(sound).to_have_text("Sound off")
    page.reload()
    expect(page.locator("#ops-sound")).to_have_attribute("aria-pressed", "false")


def test_reconnecting_browser_catches_up_every_missed_event(guard_page: Page, console: Console) -> None:
    page = guard_page
    before = max(stored_feed_ids(console, 0), default=0)
    console.stop()  # the stream is cut, as by a server restart
    expect(page.locator("#ops-live")).to_have_attribute("data-state", "reconnecting")
    console.store(CATCH_UP)
    missed = stored_feed_ids(console, before)
    assert len(missed) == CATCH_UP
    console.start()
    expect(page.locator("#ops-live")).to_have_attribute("data-state", "live", timeout=60_000)
    expect(page.locator(f'#feed-rows tr[data-feed="{missed[-1]}"]')).to_be_visible()
    shown = feed_ids(page)
    caught = [i for i in shown if i in set(missed)]
    assert sorted(caught) == missed and len(caught) == len(set(caught)), "each missed event shown once"
    assert caught == sorted(missed, reverse=True), "newest first, as they were stored"
