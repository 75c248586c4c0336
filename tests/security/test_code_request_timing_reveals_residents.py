"""Red team, issue 18 item 1: how long asking for a sign-in code takes must not tell who lives where.

`POST /auth/code` used to run the code sender inside the request: with an SMS program that takes 300 ms, a phone
with an account answered in about 315 ms and one without in about 3 ms. These tests use a real `command` sender
whose program waits for the test's word before it finishes, and assert on the order of things, never on times:
both requests answer alike before the program has run, the code goes out afterwards, and a queued request
survives a restart of the API. The queue itself must not become a list, in clear, of who asked for a code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from gatehouse_core.keyring import ServerKeys
from mobile_api.app import create_app as create_mobile_app
from mobile_api.state import mobile
from server.extensions import db
from server.models import Person, Site
from server.services.accounts import app_accounts
from tests.conftest import TEST_ACTOR
from tests.mobile.conftest import mobile_config

RESIDENT_PHONE = "+86 138 0000 0001"
RESIDENT_PHONE_KEY = "+8613800000001"
STRANGER_PHONE = "+86 139 9999 9999"
# Waiting for a background thread: a bound on how long to wait, never an assertion about speed.
PATIENCE_SECONDS = 30.0

# The SMS program: notes that it started, waits until the test releases it, then keeps what it was asked to send.
SMS_PROGRAM = """#!/bin/sh
work="$1"; phone="$2"
: > "$work/started.$$"
while [ ! -e "$work/release" ]; do sleep 0.02; done
{ printf '%s\\n' "$phone"; cat; } > "$work/.sent.$$"
mv "$work/.sent.$$" "$work/sent.$$"
"""


class SmsGateway:
    """The folder the SMS program works in: what it started, what it sent, and the switch that lets it finish."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.program = folder / "send-sms.sh"
        self.program.write_text(SMS_PROGRAM, encoding="utf-8")

    def command(self) -> list[str]:
        """The login_codes.command that runs the program."""
        return ["sh", str(self.program), str(self.folder), "{phone}"]

    def started(self) -> int:
        """How many times the program was started."""
        return len(list(self.folder.glob("started.*")))

    def sent(self) -> list[tuple[str, str]]:
        """(phone, text) of each message the program finished sending."""
        messages = []
        for path in sorted(self.folder.glob("sent.*")):
            phone, text = path.read_text(encoding="utf-8").split("\n", 1)
            messages.append((phone, text))
        return messages

    def release(self) -> None:
        """Let running and later programs finish."""
        (self.folder / "release").touch()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something a background thread does; fail with `what` if it never happens."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.02)


@pytest.fixture
def gateway(tmp_path: Path) -> SmsGateway:
    return SmsGateway(tmp_path / "sms")


@pytest.fixture
def resident(make_site: Callable[..., Site], make_person: Callable[..., Person]) -> Person:
    """Someone who lives here and has the app, signing in with RESIDENT_PHONE."""
    person = make_person(make_site(), "Li Wei", phone=RESIDENT_PHONE, unit="1-101")
    app_accounts.enable_account(db.session, TEST_ACTOR, person, username=None, password=None)
    db.session.commit()
    return person


@pytest.fixture
def build_api(app: Flask, key_dir: Path, keys: ServerKeys, tmp_path: Path, gateway: SmsGateway) -> Iterator[Any]:
    """Build mobile APIs whose codes go through the blocking SMS program; each is shut down after the test."""
    built: list[Flask] = []

    def build() -> Flask:
        config = mobile_config(
            app,
            key_dir,
            tmp_path / "unused-spool",
            login_codes={"sender": "command", "command": gateway.command(), "timeout_seconds": 5},
        )
        api = create_mobile_app(config, keys=keys, testing=True)
        built.append(api)
        return api

    yield build
    gateway.release()
    for api in built:
        shut_down(api)


def shut_down(api: Flask) -> None:
    """What stopping the process does to this API: its deliverer stops, its connections close."""
    with api.app_context():
        deliverer = mobile().deliverer
        if deliverer is not None:
            deliverer.stop()
        db.session.remove()
        db.engine.dispose()


def ask_for_code(client: FlaskClient, login: str) -> TestResponse:
    return client.post("/api/v1/auth/code", json={"login": login})


def deliver_queued_codes(api: Flask) -> None:
    """One pass of the deliverer, as its thread makes after a request or a restart."""
    with api.app_context():
        deliverer = mobile().deliverer
        assert deliverer is not None
        deliverer.drain()


def what_is_shown(response: TestResponse) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers, without the rate-limit counters (which count every request alike)."""
    headers = sorted((k, v) for k, v in response.headers.items() if not k.lower().startswith("x-ratelimit"))
    return response.status_code, response.get_data(), headers


def test_a_resident_and_a_stranger_are_answered_alike_before_any_sender_runs(
    build_api: Callable[[], Flask], gateway: SmsGateway, resident: Person
) -> None:
    api = build_api()
    client = api.test_client()

    for_resident = ask_for_code(client, RESIDENT_PHONE)
    for_stranger = ask_for_code(client, STRANGER_PHONE)

    assert for_resident.status_code == 202, for_resident.get_data(as_text=True)
    assert what_is_shown(for_resident) == what_is_shown(for_stranger)
    # Both answers came back while the SMS program had not even been started: the requests did the same work.
    assert gateway.started() == 0
    assert gateway.sent() == []

    gateway.release()
    deliver_queued_codes(api)
    [(phone, text)] = gateway.sent()
    assert phone == RESIDENT_PHONE_KEY
    assert "Test site" in text
    code = text.split(" ", 1)[0]
    signed_in = client.post("/api/v1/auth/code/login", json={"login": RESIDENT_PHONE, "code": code})
    assert signed_in.status_code == 200, signed_in.get_data(as_text=True)


def test_the_running_api_sends_the_code_after_the_request_has_answered(
    build_api: Callable[[], Flask], gateway: SmsGateway, resident: Person
) -> None:
    api = build_api()
    with api.app_context():
        deliverer = mobile().deliverer
        assert deliverer is not None
        deliverer.start(api)

    answered = ask_for_code(api.test_client(), RESIDENT_PHONE)

    assert answered.status_code == 202
    # The request is over; only now does the deliverer's thread start the program, which waits for the release.
    wait_until(lambda: gateway.started() == 1, "the deliverer starts the SMS program")
    assert gateway.sent() == []
    gateway.release()
    wait_until(lambda: len(gateway.sent()) == 1, "the SMS program finishes")
    assert gateway.sent()[0][0] == RESIDENT_PHONE_KEY


def test_a_queued_request_survives_a_restart_and_its_code_is_sent_once(
    build_api: Callable[[], Flask], gateway: SmsGateway, resident: Person
) -> None:
    before = build_api()
    assert ask_for_code(before.test_client(), RESIDENT_PHONE).status_code == 202
    # The process stops before its deliverer got to the request.
    shut_down(before)
    assert gateway.started() == 0

    after = build_api()
    gateway.release()
    deliver_queued_codes(after)
    deliver_queued_codes(after)

    [(phone, _text)] = gateway.sent()
    assert phone == RESIDENT_PHONE_KEY
    assert gateway.started() == 1


def stored_values(table: str) -> list[bytes]:
    """Every value of every row of `table`, as bytes, the way a database dump would show them."""
    values = []
    for row in db.session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - fixed table names
        for value in row:
            values.append(value if isinstance(value, bytes) else str(value).encode())
    db.session.rollback()
    return values


def test_neither_the_phone_nor_the_code_sits_in_clear_in_the_database(
    build_api: Callable[[], Flask], gateway: SmsGateway, resident: Person
) -> None:
    api = build_api()
    assert ask_for_code(api.test_client(), RESIDENT_PHONE).status_code == 202
    queued = stored_values("login_code_requests")
    assert queued
    for clear in (RESIDENT_PHONE, RESIDENT_PHONE_KEY, RESIDENT_PHONE_KEY.lstrip("+")):
        assert not [v for v in queued if clear.encode() in v]

    gateway.release()
    deliver_queued_codes(api)
    [(_phone, message)] = gateway.sent()
    code = message.split(" ", 1)[0].encode()
    for table in ("login_code_requests", "login_codes"):
        # The code as a value of its own (six digits may occur by chance inside a timestamp or a hash).
        assert not [v for v in stored_values(table) if v == code or RESIDENT_PHONE_KEY.encode() in v]
