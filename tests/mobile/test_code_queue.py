"""The queue of asks for a sign-in code and its deliverer: sealed at rest, sent once, retried, given up, shared."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys
from mobile_api.state import mobile as mobile_state
from server.extensions import db
from server.models import LoginCode, utcnow
from server.models.mobile import CodeRequestState, LoginCodeRequest
from server.services.accounts import code_queue, login_codes
from server.services.accounts.code_queue import Outcome
from server.services.accounts.login_codes import CodeMessage, CodeSenderError
from tests.mobile.conftest import Household, sent_codes

PHONE = "+86 138 0000 0001"
PHONE_KEY = "+8613800000001"


class Gateway:
    """A sender that keeps what it sends, or fails the first `failures` times (or forever)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[CodeMessage] = []
        self.tries = 0
        self.lock = threading.Lock()

    def send(self, message: CodeMessage) -> None:
        with self.lock:
            self.tries += 1
            if self.tries <= self.failures:
                raise CodeSenderError("the gateway answered 503")
            self.sent.append(message)


class Crash(BaseException):
    """The process stopping in the middle of a send."""


class CrashingGateway:
    def send(self, message: CodeMessage) -> None:
        raise Crash


@pytest.fixture
def keys_for_codes(keys: ServerKeys) -> tuple[bytes, bytes]:
    """(queue key, code key) as the mobile API derives them."""
    return code_queue.queue_key(keys.session_secret), login_codes.code_key(keys.session_secret)


@pytest.fixture
def household(make_household: Callable[..., Household]) -> Household:
    return make_household(phone=PHONE)


def queued(login: str, key: bytes, at: datetime | None = None) -> None:
    code_queue.enqueue(db.session, key, login, at)
    db.session.commit()


def rows() -> list[LoginCodeRequest]:
    db.session.expire_all()
    return list(db.session.scalars(select(LoginCodeRequest).order_by(LoginCodeRequest.id)))


def codes_kept() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LoginCode)) or 0


def test_an_ask_is_the_same_sealed_row_whoever_it_names(
    household: Household, keys_for_codes: tuple[bytes, bytes]
) -> None:
    queue, _ = keys_for_codes
    queued(PHONE, queue)
    queued("+86 139 9999 9999", queue)
    mine, stranger = rows()
    for row in (mine, stranger):
        assert row.state is CodeRequestState.PENDING and row.attempts == 0 and row.finished_at is None
        assert row.login_sealed is not None
        assert PHONE.encode() not in row.login_sealed and PHONE_KEY.encode() not in row.login_sealed
        assert b"8613800000001" not in row.login_sealed
    assert mine.login_sealed is not None and stranger.login_sealed is not None
    assert len(mine.login_sealed) == len(stranger.login_sealed)
    assert codes_kept() == 0


def test_a_code_goes_out_once_and_the_row_forgets_the_login(
    household: Household, keys_for_codes: tuple[bytes, bytes]
) -> None:
    queue, code_key = keys_for_codes
    gateway = Gateway()
    queued(PHONE, queue)
    delivery = code_queue.deliver_next(db.session, queue, code_key, gateway)
    assert delivery is not None and delivery.outcome is Outcome.SENT
    assert code_queue.deliver_next(db.session, queue, code_key, gateway) is None
    [message] = gateway.sent
    assert message.phone == PHONE_KEY
    [row] = rows()
    assert row.state is CodeRequestState.SENT and row.login_sealed is None and row.finished_at is not None
    assert login_codes.check_code(db.session, code_key, PHONE, message.code) is not None


def test_asks_for_unknown_logins_are_dropped_without_a_word(
    household: Household, keys_for_codes: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    queue, code_key = keys_for_codes
    gateway = Gateway()
    for login in ("+86 139 9999 9999", "nobody-here"):
        queued(login, queue)
    with caplog.at_level(logging.DEBUG):
        outcomes = [code_queue.deliver_next(db.session, queue, code_key, gateway) for _ in range(3)]
    assert [d.outcome if d else None for d in outcomes] == [Outcome.DROPPED, Outcome.DROPPED, None]
    assert gateway.tries == 0
    assert [r.state for r in rows()] == [CodeRequestState.DROPPED] * 2
    assert all(r.login_sealed is None for r in rows())
    assert "9999" not in caplog.text and "nobody" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_per_account_limit_applies_at_delivery(household: Household, keys_for_codes: tuple[bytes, bytes]) -> None:
    queue, code_key = keys_for_codes
    gateway = Gateway()
    for _ in range(5):
        queued(PHONE, queue)
    outcomes = [d.outcome for d in iter(lambda: code_queue.deliver_next(db.session, queue, code_key, gateway), None)]
    assert outcomes == [Outcome.SENT] * 3 + [Outcome.DROPPED] * 2
    assert len(gateway.sent) == login_codes.MAX_SENDS
    # Only the newest code works.
    assert login_codes.check_code(db.session, code_key, PHONE, gateway.sent[-1].code) is not None


def test_a_failing_sender_is_tried_again_with_back_off_then_given_up(
    household: Household, keys_for_codes: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    queue, code_key = keys_for_codes
    gateway = Gateway(failures=1000)
    t0 = utcnow()
    queued(PHONE, queue, t0)
    at = t0
    waits = []
    with caplog.at_level(logging.WARNING):
        for attempt in range(1, code_queue.MAX_TRIES + 1):
            delivery = code_queue.deliver_next(db.session, queue, code_key, gateway, at=at)
            assert delivery is not None
            [row] = rows()
            assert row.attempts == attempt
            # No code is kept from a failed try: it neither works nor counts against the account's limit.
            assert codes_kept() == 0
            if attempt < code_queue.MAX_TRIES:
                assert delivery.outcome is Outcome.RETRY
                # Not due again before its back-off ends.
                assert code_queue.deliver_next(db.session, queue, code_key, gateway, at=at) is None
                waits.append(row.next_try_at - at)
                at = row.next_try_at
    assert delivery.outcome is Outcome.FAILED
    assert rows()[0].state is CodeRequestState.FAILED and rows()[0].login_sealed is None
    assert gateway.tries == code_queue.MAX_TRIES
    assert waits == sorted(waits) and waits[0] >= code_queue.FIRST_BACKOFF
    assert all("could not be sent" in r.getMessage() for r in caplog.records)
    assert PHONE_KEY not in caplog.text and PHONE not in caplog.text
    # The failures used none of the account's three codes.
    queued(PHONE, queue, at)
    ok = code_queue.deliver_next(db.session, queue, code_key, Gateway(), at=at)
    assert ok is not None and ok.outcome is Outcome.SENT


def test_a_sender_that_recovers_delivers_on_a_later_try(
    household: Household, keys_for_codes: tuple[bytes, bytes]
) -> None:
    queue, code_key = keys_for_codes
    gateway = Gateway(failures=1)
    t0 = utcnow()
    queued(PHONE, queue, t0)
    first = code_queue.deliver_next(db.session, queue, code_key, gateway, at=t0)
    assert first is not None and first.outcome is Outcome.RETRY
    later = rows()[0].next_try_at
    second = code_queue.deliver_next(db.session, queue, code_key, gateway, at=later)
    assert second is not None and second.outcome is Outcome.SENT
    assert len(gateway.sent) == 1 and codes_kept() == 1


def test_a_try_cut_short_by_a_crash_is_taken_again_once_its_lease_runs_out(
    household: Household, keys_for_codes: tuple[bytes, bytes]
) -> None:
    queue, code_key = keys_for_codes
    t0 = utcnow()
    queued(PHONE, queue, t0)
    with pytest.raises(Crash):
        code_queue.deliver_next(db.session, queue, code_key, CrashingGateway(), at=t0)
    db.session.rollback()
    [row] = rows()
    assert row.state is CodeRequestState.PENDING and row.attempts == 1
    gateway = Gateway()
    assert code_queue.deliver_next(db.session, queue, code_key, gateway, at=t0 + timedelta(seconds=30)) is None
    again = code_queue.deliver_next(db.session, queue, code_key, gateway, at=t0 + code_queue.LEASE)
    assert again is not None and again.outcome is Outcome.SENT
    [message] = gateway.sent
    # The code that went out is the one that works.
    assert login_codes.check_code(db.session, code_key, PHONE, message.code) is not None


def test_an_ask_left_too_long_is_given_up_unsent(household: Household, keys_for_codes: tuple[bytes, bytes]) -> None:
    queue, code_key = keys_for_codes
    gateway = Gateway()
    t0 = utcnow()
    queued(PHONE, queue, t0)
    late = code_queue.deliver_next(db.session, queue, code_key, gateway, at=t0 + code_queue.GIVE_UP_AFTER)
    assert late is not None and late.outcome is Outcome.EXPIRED
    assert gateway.tries == 0 and codes_kept() == 0
    assert rows()[0].state is CodeRequestState.EXPIRED and rows()[0].login_sealed is None


def test_a_row_sealed_under_another_key_is_dropped(household: Household, keys_for_codes: tuple[bytes, bytes]) -> None:
    queue, code_key = keys_for_codes
    queued(PHONE, code_queue.queue_key(b"\x01" * 32))
    delivery = code_queue.deliver_next(db.session, queue, code_key, Gateway())
    assert delivery is not None and delivery.outcome is Outcome.DROPPED


def test_two_deliverers_never_send_one_ask_twice(
    make_household: Callable[..., Household], mobile_app: Flask, keys_for_codes: tuple[bytes, bytes]
) -> None:
    queue, code_key = keys_for_codes
    phones = [make_household().person.phone for _ in range(6)]
    for phone in phones:
        assert phone is not None
        queued(phone, queue)
    gateway = Gateway()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def deliverer() -> None:
        with mobile_app.app_context():
            start.wait()
            try:
                while code_queue.deliver_next(db.session, queue, code_key, gateway) is not None:
                    pass
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=deliverer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(m.phone for m in gateway.sent) == sorted(p.replace(" ", "") for p in phones if p)
    assert [r.state for r in rows()] == [CodeRequestState.SENT] * len(phones)
    assert all(r.attempts == 1 for r in rows())


def test_the_running_deliverer_is_woken_by_a_request(
    make_mobile_app: Callable[..., Flask], household: Household, code_spool: Path
) -> None:
    api = make_mobile_app()
    with api.app_context():
        deliverer = mobile_state().deliverer
        assert deliverer is not None
        # Without a wake-up it would not look at the queue again for an hour.
        deliverer.poll_seconds = 3600
        deliverer.start(api)
    try:
        response = api.test_client().post("/api/v1/auth/code", json={"login": PHONE})
        assert response.status_code == 202
        deadline = time.monotonic() + 30
        while not sent_codes(code_spool) and time.monotonic() < deadline:
            time.sleep(0.02)
        [message] = sent_codes(code_spool)
        assert message["phone"] == PHONE_KEY
    finally:
        deliverer.stop()


def test_the_deliverer_thread_survives_a_database_error(
    make_mobile_app: Callable[..., Flask],
    household: Household,
    code_spool: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = make_mobile_app()
    real = code_queue.deliver_next
    broken = threading.Event()
    broken.set()

    def flaky(*args: object, **kwargs: object) -> code_queue.Delivery | None:
        if broken.is_set():
            broken.clear()
            raise RuntimeError(f"connection lost while looking up {PHONE_KEY}")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(code_queue, "deliver_next", flaky)
    with api.app_context():
        deliverer = mobile_state().deliverer
        assert deliverer is not None
        deliverer.poll_seconds = 0.05
    queued(PHONE, mobile_state_key(api))
    with caplog.at_level(logging.ERROR):
        deliverer.start(api)
        try:
            deadline = time.monotonic() + 30
            while not sent_codes(code_spool) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            deliverer.stop()
    assert len(sent_codes(code_spool)) == 1
    assert "RuntimeError" in caplog.text and PHONE_KEY not in caplog.text


def mobile_state_key(api: Flask) -> bytes:
    with api.app_context():
        return mobile_state().queue_key
