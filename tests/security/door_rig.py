"""A door terminal's decision engine on a real store, driven the way the terminal loop drives it.

Shared by the keypad-lockout attacks in this folder. `Door.present` keeps each decision as
`terminals.runtime` does: the event with its uses, and a wrong guess counted against the keypad lockout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core import app_code
from gatehouse_core.credential_hash import hash_card, hash_id_document, hash_pass_code
from gatehouse_core.pass_token import PassClaims, sign_pass
from gatehouse_core.sealed import seal
from gatehouse_core.wire.records import (
    CredentialRecord,
    DoorRecord,
    GroupRecord,
    PassRecord,
    PersonRecord,
    SiteRecord,
    TemplateRecord,
    seed_context,
)
from terminals.decision import DecisionEngine, Verdict
from terminals.inputs import CodeEntered, Presentation
from terminals.lockout import Lockout, LockoutPolicy
from terminals.store import TerminalStore

SITE = "maple-court"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FRONT = 1
ALICE, BOB = "p-00000000000000a1", "p-00000000000000b0"
ALICE_CARD, BOB_CARD = "04A2B3C4D5E6F7", "04A2B3C4D5E6F8"
ALICE_ID = "G12345678"
ALICE_APP, BOB_APP = 500, 501  # credential ids of their app codes
VISITOR_CODE = "314159"


@dataclass
class Door:
    """One terminal with one door, two residents with app codes and a visitor pass with a typed code."""

    path: Path
    store: TerminalStore
    engine: DecisionEngine
    server: Ed25519PrivateKey
    seeds: dict[str, bytes]
    keys: tuple[bytes, bytes]  # credential key, seal key

    def present(self, presentation: Presentation, now: datetime = NOW) -> Verdict:
        """Decide and keep the decision as the terminal loop does."""
        verdict = self.engine.decide(presentation, now)
        assert verdict is not None
        self.store.record_decision(
            verdict.event(now),
            pass_use=verdict.pass_id if verdict.granted else None,
            code_use=verdict.code_use if verdict.granted else None,
        )
        if verdict.guess:
            self.engine.lockout.failure(now.timestamp())
        self.store.set_state("lockout", self.engine.lockout.dumps())
        return verdict

    def code(self, who: str, at: datetime = NOW) -> str:
        """The resident's current app code."""
        return app_code.code_at_step(app_code.totp(self.seeds[who]), app_code.step_of(at.timestamp()))

    def wrong_code(self, who: str, at: datetime = NOW) -> str:
        """An 8-digit code that is nobody's right now."""
        live = {self.code(p, at + timedelta(seconds=d)) for p in self.seeds for d in (-30, 0, 30)}
        return next(f"{n:08d}" for n in range(12_345_678, 99_999_999) if f"{n:08d}" not in live)

    def visitor_token(self, pass_id: int = 42) -> str:
        """A visitor's QR signed by the server for this site, valid now at the door."""
        claims = PassClaims(
            pass_id=pass_id,
            doors=(FRONT,),
            valid_from=NOW - timedelta(minutes=5),
            valid_until=NOW + timedelta(hours=2),
            uses_allowed=5,
        )
        return sign_pass(self.server, SITE, claims)

    def guess_at_keypad(self, times: int = 5) -> None:
        """Type wrong 8-digit codes until the keypad lockout starts."""
        for _ in range(times):
            self.present(CodeEntered(FRONT, self.wrong_code(ALICE)))

    def restarted(self) -> Door:
        """The same terminal after a power cycle: store reopened, lockout read back."""
        self.store.close()
        return open_door(self.path, self.server, self.seeds, self.keys)


def open_door(
    path: Path,
    server: Ed25519PrivateKey | None = None,
    seeds: dict[str, bytes] | None = None,
    keys: tuple[bytes, bytes] | None = None,
) -> Door:
    """A terminal store at `path` holding the site, its door, Alice, Bob and a visitor pass."""
    server = server or Ed25519PrivateKey.generate()
    seeds = seeds or {ALICE: os.urandom(20), BOB: os.urandom(20)}
    credential_key, seal_key = keys or (os.urandom(32), os.urandom(32))
    store = TerminalStore(path)
    if store.applied_seq() == 0:

        def resident(pseudonym: str, card: str, app_id: int, *extra: CredentialRecord) -> PersonRecord:
            sealed = seal(seal_key, seeds[pseudonym], seed_context(pseudonym, app_id))
            credentials = (
                CredentialRecord(id=app_id - 400, kind="card", hash=hash_card(credential_key, card)),
                CredentialRecord(id=app_id, kind="app_code", sealed=sealed),
                *extra,
            )
            # Alice has a face template too (her consent is the server's business; here it is simply held).
            templates = (
                (TemplateRecord(id=77, model="buffalo_s", sealed=b"\x01" + bytes(40)),) if pseudonym == ALICE else ()
            )
            return PersonRecord(pseudonym=pseudonym, groups=(10,), credentials=credentials, templates=templates)

        store.apply(
            (),
            [
                SiteRecord(timezone="Europe/Berlin", face_enabled=True, holidays=()),
                DoorRecord(id=FRONT, face=True, card=True, id_document=True, app_code=True),
                GroupRecord(
                    id=10, doors=(FRONT,), windows=tuple((d, 0, 1440) for d in range(7)), open_on_holidays=True
                ),
                resident(
                    ALICE,
                    ALICE_CARD,
                    ALICE_APP,
                    CredentialRecord(id=900, kind="id_document", hash=hash_id_document(credential_key, ALICE_ID)),
                ),
                resident(BOB, BOB_CARD, BOB_APP),
                PassRecord(
                    id=7,
                    doors=(FRONT,),
                    valid_from=NOW - timedelta(hours=1),
                    valid_until=NOW + timedelta(hours=3),
                    uses_allowed=5,
                    uses_count=0,
                    code_hash=hash_pass_code(credential_key, VISITOR_CODE),
                ),
            ],
            7,
        )
    engine = DecisionEngine(
        store,
        site=SITE,
        credential_key=credential_key,
        seal_key=seal_key,
        server_key=server.public_key(),
        lockout=Lockout.loads(store.state("lockout"), LockoutPolicy()),
    )
    return Door(path, store, engine, server, seeds, (credential_key, seal_key))
