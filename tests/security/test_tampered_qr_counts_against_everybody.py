"""Attack: show the camera forged or damaged QR codes to lock typed entry for every resident and visitor.

A visitor's QR is an Ed25519 token: one whose signature fails cannot be a lucky guess, so it says nothing
about anyone and must not count towards the keypad lockout. The same holds for an app-code QR that does not
parse or names a credential this terminal does not hold. Only a wrong code in an app-code QR is a guess,
and only against the one credential it names (see test_app_code_qr_guessing_locks_only_that_credential).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core import app_code
from gatehouse_core.pass_token import sign_pass
from terminals.decision import Reason
from terminals.inputs import CodeEntered, IdEntered, QrScanned

from .door_rig import ALICE, ALICE_ID, FRONT, NOW, SITE, VISITOR_CODE, Door, open_door


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    rig = open_door(tmp_path / "terminal.db")
    yield rig
    rig.store.close()


def _flip_signature(door: Door) -> str:
    token = door.visitor_token()
    head, sep, tail = token.rpartition(".") if "." in token else (token[:-8], "", token[-8:])
    return head + sep + ("A" if tail[0] != "A" else "B") + tail[1:]


TAMPERED: dict[str, Callable[[Door], str]] = {
    "forged signature": lambda d: sign_pass(Ed25519PrivateKey.generate(), SITE, _claims(d)),
    "another site's pass": lambda d: sign_pass(d.server, "other-site", _claims(d)),
    "truncated token": lambda d: d.visitor_token()[:-4],
    "altered token": _flip_signature,
    "app-code QR that does not parse": lambda d: f"{app_code.QR_PREFIX}:not-a-credential:xx",
    "app-code QR of an unknown credential": lambda d: app_code.AppCodeQr(9999, "12345678").text(),
}


def _claims(door: Door):  # type: ignore[no-untyped-def]
    from gatehouse_core.pass_token import verify_pass

    return verify_pass(door.server.public_key(), SITE, door.visitor_token())


@pytest.mark.parametrize("made", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_qr_never_locks_the_keypad(door: Door, made: Callable[[Door], str]) -> None:
    for _ in range(20):
        verdict = door.present(QrScanned(FRONT, made(door)))
        assert not verdict.granted
        assert verdict.reason in (Reason.MALFORMED, Reason.UNKNOWN)
        assert not verdict.guess
    assert not door.engine.lockout.locked(NOW.timestamp())
    assert door.present(CodeEntered(FRONT, door.code(ALICE))).granted
    assert door.present(CodeEntered(FRONT, VISITOR_CODE)).granted
    assert door.present(IdEntered(FRONT, ALICE_ID)).granted
    assert door.present(QrScanned(FRONT, door.visitor_token())).granted
