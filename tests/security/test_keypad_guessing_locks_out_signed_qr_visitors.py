"""Attack: guess codes at a terminal's keypad until it locks, and so shut out everyone who does not type.

A typed code does not say whose it is, so wrong ones must slow every typed entry at that terminal. But a
visitor's signed QR cannot be guessed, and a resident's app-code QR names its own credential: neither may
be refused because somebody else typed wrong codes. Cards and face were never affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gatehouse_core import app_code
from terminals.decision import Reason
from terminals.inputs import CardPresented, CodeEntered, FaceAttempt, IdEntered, Presentation, QrScanned

from .door_rig import ALICE, ALICE_APP, ALICE_CARD, ALICE_ID, BOB, BOB_APP, FRONT, NOW, VISITOR_CODE, Door, open_door


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    rig = open_door(tmp_path / "terminal.db")
    yield rig
    rig.store.close()


@pytest.mark.parametrize("wrong", ["code", "visitor_code", "id_number"])
def test_keypad_lockout_leaves_signed_visitor_qr_and_app_code_qr_working(door: Door, wrong: str) -> None:
    for n in range(5):
        guesses: dict[str, Presentation] = {
            "code": CodeEntered(FRONT, door.wrong_code(ALICE)),
            "visitor_code": CodeEntered(FRONT, f"{271828 + n:06d}"),
            "id_number": IdEntered(FRONT, f"G0000000{n}"),
        }
        guess = guesses[wrong]
        assert door.present(guess).reason in (Reason.UNKNOWN, Reason.MALFORMED)
    assert door.engine.lockout.locked(NOW.timestamp()), "five wrong typed entries lock the keypad"

    visitor = door.present(QrScanned(FRONT, door.visitor_token()))
    assert visitor.granted, f"a visitor's signed QR was refused as {visitor.reason}"
    alice = door.present(QrScanned(FRONT, app_code.AppCodeQr(ALICE_APP, door.code(ALICE)).text()))
    assert alice.granted, f"a resident's app-code QR was refused as {alice.reason}"
    bob = door.present(QrScanned(FRONT, app_code.AppCodeQr(BOB_APP, door.code(BOB)).text()))
    assert bob.granted and bob.person == BOB
    assert door.present(CardPresented(FRONT, ALICE_CARD)).granted
    assert door.present(FaceAttempt(FRONT, ALICE)).granted


def test_keypad_lockout_still_slows_everything_typed(door: Door) -> None:
    door.guess_at_keypad()
    for typed in (CodeEntered(FRONT, door.code(ALICE)), CodeEntered(FRONT, VISITOR_CODE), IdEntered(FRONT, ALICE_ID)):
        assert door.present(typed).reason is Reason.LOCKED_OUT
    # The first lockout is 30 s; after it the same right code opens the door.
    assert door.present(
        CodeEntered(FRONT, door.code(ALICE, NOW + timedelta(seconds=31))), NOW + timedelta(seconds=31)
    ).granted


def test_signed_visitor_qr_works_through_a_lockout_that_survived_a_restart(door: Door) -> None:
    door.guess_at_keypad()
    door = door.restarted()
    try:
        assert door.present(CodeEntered(FRONT, VISITOR_CODE)).reason is Reason.LOCKED_OUT
        assert door.present(QrScanned(FRONT, door.visitor_token())).granted
    finally:
        door.store.close()
