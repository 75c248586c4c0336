"""Attack: guess the 8-digit code inside a resident's app-code QR (`GHA1:<credential>:<code>`).

Such a guess can only ever match the one credential the QR names, so wrong codes are counted against that
credential alone: after five, that credential's QR is locked for a growing time (guessing stays slow, and
each lockout alarms), while other residents' QRs, typed entry and visitors' QRs keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gatehouse_core import app_code
from gatehouse_core.wire.messages import Decision
from terminals.decision import Reason
from terminals.inputs import CardPresented, CodeEntered, QrScanned

from .door_rig import ALICE, ALICE_APP, ALICE_CARD, BOB, BOB_APP, FRONT, NOW, Door, open_door


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    rig = open_door(tmp_path / "terminal.db")
    yield rig
    rig.store.close()


def _guess_alices_qr(door: Door, times: int = 5) -> None:
    for _ in range(times):
        verdict = door.present(QrScanned(FRONT, app_code.AppCodeQr(ALICE_APP, door.wrong_code(ALICE)).text()))
        assert verdict.reason is Reason.UNKNOWN and not verdict.guess


def test_wrong_codes_in_one_credentials_qr_lock_only_that_qr(door: Door) -> None:
    _guess_alices_qr(door)
    alice_qr = QrScanned(FRONT, app_code.AppCodeQr(ALICE_APP, door.code(ALICE)).text())
    assert door.present(alice_qr).reason is Reason.LOCKED_OUT, "the right code waits out the lockout"
    assert door.present(QrScanned(FRONT, app_code.AppCodeQr(BOB_APP, door.code(BOB)).text())).granted
    assert not door.engine.lockout.locked(NOW.timestamp())
    assert door.present(CodeEntered(FRONT, door.code(ALICE))).granted
    assert door.present(CardPresented(FRONT, ALICE_CARD)).granted
    assert door.present(QrScanned(FRONT, door.visitor_token())).granted
    later = NOW + timedelta(seconds=31)
    assert door.present(QrScanned(FRONT, app_code.AppCodeQr(ALICE_APP, door.code(ALICE, later)).text()), later).granted


def test_each_credential_lockout_alarms_grows_and_survives_a_restart(door: Door) -> None:
    _guess_alices_qr(door)
    alarms = [e for e in door.store.pending_events(100) if e.decision is Decision.ALARM]
    assert [(a.reason, a.person) for a in alarms] == [("brute_force", None)]
    door = door.restarted()
    try:
        alice_qr = QrScanned(FRONT, app_code.AppCodeQr(ALICE_APP, door.code(ALICE)).text())
        assert door.present(alice_qr).reason is Reason.LOCKED_OUT
        # Five more after the first lockout: the second lockout is longer (60 s).
        after = NOW + timedelta(seconds=31)
        for _ in range(5):
            wrong = QrScanned(FRONT, app_code.AppCodeQr(ALICE_APP, door.wrong_code(ALICE, after)).text())
            door.present(wrong, after)
        at_45 = after + timedelta(seconds=45)
        code = app_code.AppCodeQr(ALICE_APP, door.code(ALICE, at_45)).text()
        assert door.present(QrScanned(FRONT, code), at_45).reason is Reason.LOCKED_OUT
        assert len([e for e in door.store.pending_events(100) if e.decision is Decision.ALARM]) == 2
        door.engine.lockout.clear()
        assert door.present(QrScanned(FRONT, code), at_45).granted
    finally:
        door.store.close()
