"""terminals.decision: every way in, every reason, on a real terminal store (no server, no network)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core import app_code
from gatehouse_core.credential_hash import hash_card, hash_id_document, hash_pass_code
from gatehouse_core.pass_token import PassClaims, sign_pass
from gatehouse_core.sealed import seal
from gatehouse_core.wire.messages import EntryMethod
from gatehouse_core.wire.records import (
    CredentialRecord,
    DoorRecord,
    GroupRecord,
    PassRecord,
    PersonRecord,
    Record,
    Removal,
    SiteRecord,
    TemplateRecord,
    seed_context,
)
from terminals.decision import DENIED_MESSAGE, DecisionEngine, Reason, Verdict
from terminals.inputs import CardPresented, CodeEntered, FaceAttempt, IdEntered, Presentation, QrScanned
from terminals.lockout import Lockout, LockoutPolicy
from terminals.store import TerminalStore

SITE = "maple-court"
ALICE = "p-00000000000000a1"
BOB = "p-00000000000000b0"
CAROL = "p-00000000000000c0"
ALICE_CARD = "04A2B3C4D5E6F7"
ALICE_ID = "G12345678"
BOB_CARD = "04A2B3C4D5E6F8"
SEALED = b"\x01" + bytes(range(40))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Berlin
FRONT, GARAGE, POOL = 1, 2, 3
ALL_WEEK = tuple((d, 0, 1440) for d in range(7))


@dataclass
class Rig:
    store: TerminalStore
    engine: DecisionEngine
    credential_key: bytes
    seal_key: bytes
    server: Ed25519PrivateKey
    alice_seed: bytes

    def apply(self, *records: Record, removals: tuple[Removal, ...] = ()) -> None:
        self.store.apply(removals, records, None)
        people = frozenset(
            [r.key for r in removals if r.kind == "person"] + [r.key for r in records if isinstance(r, PersonRecord)]
        )
        self.engine.synced(people, full=False)

    def decide(self, presentation: Presentation, now: datetime = NOW) -> Verdict:
        """Decide and keep the decision the way the terminal loop does (event, uses)."""
        verdict = self.engine.decide(presentation, now)
        assert verdict is not None
        self.store.record_decision(
            verdict.event(now),
            pass_use=verdict.pass_id if verdict.granted else None,
            code_use=verdict.code_use if verdict.granted else None,
        )
        if verdict.guess:
            self.engine.lockout.failure(now.timestamp())
        return verdict

    def code(self, at: datetime, seed: bytes | None = None) -> str:
        return app_code.code_at_step(app_code.totp(seed or self.alice_seed), app_code.step_of(at.timestamp()))

    def token(self, claims: PassClaims, site: str = SITE) -> str:
        return sign_pass(self.server, site, claims)


def door(id_: int, *, face: bool = True, id_document: bool = True) -> DoorRecord:
    return DoorRecord(id=id_, face=face, card=True, id_document=id_document, app_code=True)


def person(rig_keys: tuple[bytes, bytes], pseudonym: str, card: str, *, groups: tuple[int, ...] = (10,), **kw: object):
    credential_key, seal_key = rig_keys
    credentials = [CredentialRecord(id=hash(pseudonym) % 1000 + 1, kind="card", hash=hash_card(credential_key, card))]
    if "id_number" in kw:
        credentials.append(
            CredentialRecord(id=900, kind="id_document", hash=hash_id_document(credential_key, str(kw["id_number"])))
        )
    if "seed" in kw:
        cid = int(kw.get("seed_id", 500))  # type: ignore[call-overload]
        sealed = seal(seal_key, bytes(kw["seed"]), seed_context(pseudonym, cid))  # type: ignore[arg-type]
        credentials.append(CredentialRecord(id=cid, kind="app_code", sealed=sealed))
    templates = (TemplateRecord(id=77, model="buffalo_s", sealed=SEALED),) if kw.get("face") else ()
    return PersonRecord(pseudonym=pseudonym, groups=groups, credentials=tuple(credentials), templates=templates)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = TerminalStore(tmp_path / "terminal.db")
    credential_key, seal_key = os.urandom(32), os.urandom(32)
    server = Ed25519PrivateKey.generate()
    alice_seed = os.urandom(20)
    keys = (credential_key, seal_key)
    store.apply(
        (),
        [
            SiteRecord(timezone="Europe/Berlin", face_enabled=True, holidays=(date(2026, 12, 25),)),
            door(FRONT),
            door(GARAGE, face=False, id_document=False),
            door(POOL),
            GroupRecord(
                id=10, doors=(FRONT, GARAGE), windows=tuple((d, 0, 1440) for d in range(7)), open_on_holidays=True
            ),
            # Pool: weekdays 07:00-09:00 only, closed on holidays.
            GroupRecord(id=20, doors=(POOL,), windows=tuple((d, 420, 540) for d in range(5)), open_on_holidays=False),
            person(keys, ALICE, ALICE_CARD, groups=(10, 20), id_number=ALICE_ID, seed=alice_seed, face=True),
            person(keys, BOB, BOB_CARD, groups=(10,)),
        ],
        7,
    )
    engine = DecisionEngine(
        store,
        site=SITE,
        credential_key=credential_key,
        seal_key=seal_key,
        server_key=server.public_key(),
        lockout=Lockout(LockoutPolicy()),
    )
    yield Rig(store, engine, credential_key, seal_key, server, alice_seed)
    store.close()


# ---- cards and ID documents -----------------------------------------------------------------------------------


def test_card_grants_and_the_event_names_the_person_not_the_card(rig: Rig) -> None:
    verdict = rig.decide(CardPresented(FRONT, "04:a2:b3:c4:d5:e6:f7"))
    assert verdict.granted and verdict.person == ALICE and verdict.method is EntryMethod.CARD
    event = rig.store.pending_events(10)[0]
    assert (event.person, event.reason, event.door) == (ALICE, "granted", FRONT)
    assert ALICE_CARD.lower() not in event.model_dump_json().lower()


def test_unknown_card_is_denied_with_a_generic_message(rig: Rig) -> None:
    verdict = rig.decide(CardPresented(FRONT, "0411223344556677"[:14]))
    assert (verdict.granted, verdict.reason, verdict.person) == (False, Reason.UNKNOWN, None)
    assert verdict.message == DENIED_MESSAGE


def test_revoked_card_and_moved_out_person_are_refused_as_revoked(rig: Rig) -> None:
    keys = (rig.credential_key, rig.seal_key)
    # Alice's card is revoked: her record comes again without it.
    rig.apply(person(keys, ALICE, "0400000000000000"[:14], groups=(10, 20)))
    assert rig.decide(CardPresented(FRONT, ALICE_CARD)).reason is Reason.REVOKED
    # Bob moves out: his record is removed.
    rig.apply(removals=(Removal(kind="person", key=BOB),))
    assert rig.decide(CardPresented(FRONT, BOB_CARD)).reason is Reason.REVOKED
    # A card registered again later is simply valid again.
    rig.apply(person(keys, CAROL, BOB_CARD))
    verdict = rig.decide(CardPresented(FRONT, BOB_CARD))
    assert verdict.granted and verdict.person == CAROL


def test_id_document_grants_and_malformed_numbers_count_as_guesses(rig: Rig) -> None:
    assert rig.decide(IdEntered(FRONT, "g-1234 5678")).granted
    verdict = rig.decide(IdEntered(FRONT, "??"))
    assert verdict.reason is Reason.MALFORMED and verdict.guess


def test_door_that_does_not_take_a_method_refuses_it(rig: Rig) -> None:
    assert rig.decide(IdEntered(GARAGE, ALICE_ID)).reason is Reason.METHOD_NOT_ALLOWED
    assert rig.decide(CardPresented(GARAGE, ALICE_CARD)).granted


def test_wrong_door_and_unknown_door(rig: Rig) -> None:
    assert rig.decide(CardPresented(POOL, BOB_CARD)).reason is Reason.WRONG_DOOR
    assert rig.decide(CardPresented(99, ALICE_CARD)).reason is Reason.WRONG_DOOR


# ---- schedules: time zone, DST, midnight, holidays -----------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "granted"),
    [
        # Before the spring change (CET, UTC+1): 07:00 local is 06:00 UTC.
        (datetime(2026, 3, 27, 5, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 27, 6, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 27, 7, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 27, 8, 0, tzinfo=UTC), False),
        # After it (CEST, UTC+2), Monday 30 March: 07:00 local is 05:00 UTC.
        (datetime(2026, 3, 30, 4, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 30, 5, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), False),
        # Autumn change (25 October 2026), Monday 26 October, CET again.
        (datetime(2026, 10, 26, 5, 30, tzinfo=UTC), False),
        (datetime(2026, 10, 26, 6, 30, tzinfo=UTC), True),
    ],
)
def test_schedule_follows_site_local_time_across_dst(rig: Rig, utc: datetime, granted: bool) -> None:
    verdict = rig.decide(CardPresented(POOL, ALICE_CARD), utc)
    assert verdict.granted is granted
    if not granted:
        assert verdict.reason is Reason.OUTSIDE_SCHEDULE


def test_window_across_midnight_is_judged_per_local_day(rig: Rig) -> None:
    keys = (rig.credential_key, rig.seal_key)
    # Night shift: Friday 22:00-24:00 and Saturday 00:00-02:00, Berlin time.
    rig.apply(
        GroupRecord(id=30, doors=(POOL,), windows=((4, 1320, 1440), (5, 0, 120)), open_on_holidays=True),
        person(keys, BOB, BOB_CARD, groups=(10, 30)),
    )
    friday_2159 = datetime(2026, 11, 27, 20, 59, tzinfo=UTC)
    assert rig.decide(CardPresented(POOL, BOB_CARD), friday_2159).reason is Reason.OUTSIDE_SCHEDULE
    for minutes in (1, 60, 119, 180, 239):  # 22:00 Friday ... 01:59 Saturday local
        assert rig.decide(CardPresented(POOL, BOB_CARD), friday_2159 + timedelta(minutes=minutes)).granted
    saturday_0200 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    assert rig.decide(CardPresented(POOL, BOB_CARD), saturday_0200).reason is Reason.OUTSIDE_SCHEDULE


def test_holiday_closes_groups_that_are_closed_on_holidays(rig: Rig) -> None:
    christmas_0730 = datetime(2026, 12, 25, 6, 30, tzinfo=UTC)  # a Friday
    assert rig.decide(CardPresented(POOL, ALICE_CARD), christmas_0730).reason is Reason.OUTSIDE_SCHEDULE
    assert rig.decide(CardPresented(FRONT, ALICE_CARD), christmas_0730).granted
    assert rig.decide(CardPresented(POOL, ALICE_CARD), christmas_0730 - timedelta(days=1)).granted


# ---- resident app codes (TOTP) ----------------------------------------------------------------------------


@pytest.mark.parametrize("offset_steps", [-1, 0, 1])
def test_keyed_app_code_of_accepted_steps_grants(rig: Rig, offset_steps: int) -> None:
    code = rig.code(NOW + timedelta(seconds=30 * offset_steps))
    verdict = rig.decide(CodeEntered(FRONT, code))
    assert verdict.granted and verdict.person == ALICE and verdict.method is EntryMethod.APP_CODE


@pytest.mark.parametrize("offset_steps", [-3, -2, 2, 3])
def test_keyed_app_code_outside_the_window_is_unknown(rig: Rig, offset_steps: int) -> None:
    code = rig.code(NOW + timedelta(seconds=30 * offset_steps))
    if code in {rig.code(NOW + timedelta(seconds=30 * k)) for k in (-1, 0, 1)}:
        pytest.skip("the codes of two steps coincide for this seed")
    verdict = rig.decide(CodeEntered(FRONT, code))
    assert verdict.reason is Reason.UNKNOWN and verdict.guess


def test_window_edges_to_the_second(rig: Rig) -> None:
    step = app_code.step_of(NOW.timestamp())
    code = app_code.code_at_step(app_code.totp(rig.alice_seed), step)
    first_second = datetime.fromtimestamp(step * 30 - 30, UTC)  # first second of step-1
    last_second = datetime.fromtimestamp(step * 30 + 59, UTC)  # last second of step+1
    assert rig.engine.decide(CodeEntered(FRONT, code), first_second).granted  # type: ignore[union-attr]
    assert rig.engine.decide(CodeEntered(FRONT, code), last_second).granted  # type: ignore[union-attr]
    after = rig.engine.decide(CodeEntered(FRONT, code), last_second + timedelta(seconds=1))
    before = rig.engine.decide(CodeEntered(FRONT, code), first_second - timedelta(seconds=1))
    assert after is not None and after.reason is Reason.UNKNOWN
    assert before is not None and before.reason is Reason.UNKNOWN


def test_app_code_is_single_use_on_a_terminal(rig: Rig) -> None:
    code = rig.code(NOW)
    assert rig.decide(CodeEntered(FRONT, code)).granted
    again = rig.decide(CodeEntered(FRONT, code), NOW + timedelta(seconds=5))
    assert again.reason is Reason.REPLAYED and not again.guess


def test_app_code_qr_grants_and_a_wrong_code_in_it_is_a_guess(rig: Rig) -> None:
    qr = app_code.AppCodeQr(500, rig.code(NOW)).text()
    assert rig.decide(QrScanned(FRONT, qr)).granted
    wrong = app_code.AppCodeQr(500, "00000000" if rig.code(NOW) != "00000000" else "11111111").text()
    verdict = rig.decide(QrScanned(FRONT, wrong))
    # The QR names its credential: the guess counts against that credential alone, not the keypad.
    assert verdict.reason is Reason.UNKNOWN and not verdict.guess
    assert rig.engine.lockout.credentials[500].failures == [NOW.timestamp()]
    assert rig.engine.lockout.failures == []


def test_revoked_app_code_is_refused_as_revoked(rig: Rig) -> None:
    keys = (rig.credential_key, rig.seal_key)
    code = rig.code(NOW)
    rig.apply(person(keys, ALICE, ALICE_CARD, groups=(10, 20)))  # no seed any more
    assert rig.decide(QrScanned(FRONT, app_code.AppCodeQr(500, code).text())).reason is Reason.REVOKED
    assert rig.decide(CodeEntered(FRONT, code)).reason is Reason.UNKNOWN


def test_coinciding_codes_of_two_residents_admit_neither(rig: Rig) -> None:
    keys = (rig.credential_key, rig.seal_key)
    # The same seed twice makes the codes coincide, as two seeds do by chance now and then.
    rig.apply(person(keys, BOB, BOB_CARD, seed=rig.alice_seed, seed_id=501))
    verdict = rig.decide(CodeEntered(FRONT, rig.code(NOW)))
    assert verdict.reason is Reason.AMBIGUOUS and not verdict.guess
    # The QR names its credential, so it still works.
    assert rig.decide(QrScanned(FRONT, app_code.AppCodeQr(501, rig.code(NOW)).text())).person == BOB


def test_app_code_seed_added_by_sync_works_at_once(rig: Rig) -> None:
    keys = (rig.credential_key, rig.seal_key)
    seed = os.urandom(20)
    rig.decide(CodeEntered(FRONT, "12345678"))  # builds the tables
    rig.apply(person(keys, BOB, BOB_CARD, seed=seed, seed_id=502))
    verdict = rig.decide(CodeEntered(FRONT, rig.code(NOW, seed)))
    assert verdict.granted and verdict.person == BOB


# ---- visitor passes -------------------------------------------------------------------------------------


def pass_record(rig: Rig, pass_id: int, code: str, **kw: object) -> PassRecord:
    fields: dict[str, object] = {
        "id": pass_id,
        "doors": (FRONT,),
        "valid_from": NOW - timedelta(hours=1),
        "valid_until": NOW + timedelta(hours=3),
        "uses_allowed": 1,
        "uses_count": 0,
        "code_hash": hash_pass_code(rig.credential_key, code),
    }
    fields.update(kw)
    return PassRecord.model_validate(fields)


def test_visitor_code_single_use(rig: Rig) -> None:
    rig.apply(pass_record(rig, 5, "123456"))
    first = rig.decide(CodeEntered(FRONT, "123 456"))
    assert first.granted and first.pass_id == 5 and first.method is EntryMethod.VISITOR_CODE
    assert rig.decide(CodeEntered(FRONT, "123456")).reason is Reason.USED_UP


@pytest.mark.parametrize(
    ("changes", "door", "reason"),
    [
        ({"revoked": True}, FRONT, Reason.REVOKED),
        ({"valid_from": NOW + timedelta(minutes=1)}, FRONT, Reason.NOT_YET_VALID),
        ({"valid_until": NOW}, FRONT, Reason.EXPIRED),
        ({}, POOL, Reason.WRONG_DOOR),
        ({"uses_count": 1}, FRONT, Reason.USED_UP),
        ({"used": ("1b4e28ba-2fa1-41d2-883f-0016d3cca427",)}, FRONT, Reason.USED_UP),
    ],
)
def test_visitor_code_refusals(rig: Rig, changes: dict[str, object], door: int, reason: Reason) -> None:
    rig.apply(pass_record(rig, 5, "123456", **changes))
    verdict = rig.decide(CodeEntered(door, "123456"))
    assert verdict.reason is reason and verdict.pass_id == 5 and not verdict.guess


def test_own_uses_counted_by_the_server_are_not_counted_twice(rig: Rig) -> None:
    rig.apply(pass_record(rig, 5, "123456", uses_allowed=2))
    assert rig.decide(CodeEntered(FRONT, "123456")).granted
    own = rig.store.local_pass_uses(5)
    # The server has counted this terminal's use: one of two is used, so one entry is left.
    rig.apply(pass_record(rig, 5, "123456", uses_allowed=2, uses_count=1, used=tuple(own)))
    assert rig.decide(CodeEntered(FRONT, "123456")).granted
    assert rig.decide(CodeEntered(FRONT, "123456")).reason is Reason.USED_UP


def test_unknown_and_ended_visitor_codes(rig: Rig) -> None:
    verdict = rig.decide(CodeEntered(FRONT, "654321"))
    assert verdict.reason is Reason.UNKNOWN and verdict.guess
    rig.apply(pass_record(rig, 6, "654321"))
    rig.apply(removals=(Removal(kind="pass", key="6"),))  # expired by the server
    assert rig.decide(CodeEntered(FRONT, "654321")).reason is Reason.EXPIRED


def claims(**kw: object) -> PassClaims:
    fields: dict[str, object] = {
        "pass_id": 42,
        "doors": (FRONT, GARAGE),
        "valid_from": NOW - timedelta(minutes=5),
        "valid_until": NOW + timedelta(hours=2),
        "uses_allowed": 1,
    }
    fields.update(kw)
    return PassClaims(**fields)  # type: ignore[arg-type]


def test_signed_token_of_a_pass_never_synced_admits_once(rig: Rig) -> None:
    token = rig.token(claims())
    first = rig.decide(QrScanned(GARAGE, token))
    assert first.granted and first.pass_id == 42 and first.method is EntryMethod.VISITOR_QR
    assert rig.decide(QrScanned(FRONT, token)).reason is Reason.USED_UP


@pytest.mark.parametrize(
    ("made", "door", "reason"),
    [
        (lambda r: r.token(claims(), site="other-site"), FRONT, Reason.MALFORMED),
        (lambda r: sign_pass(Ed25519PrivateKey.generate(), SITE, claims()), FRONT, Reason.MALFORMED),
        (lambda r: r.token(claims())[:-4], FRONT, Reason.MALFORMED),
        (lambda r: r.token(claims(valid_until=NOW)), FRONT, Reason.EXPIRED),
        (lambda r: r.token(claims(valid_from=NOW + timedelta(hours=1))), FRONT, Reason.NOT_YET_VALID),
        (lambda r: r.token(claims()), POOL, Reason.WRONG_DOOR),
    ],
)
def test_token_refusals(rig: Rig, made, door: int, reason: Reason) -> None:  # type: ignore[no-untyped-def]
    verdict = rig.decide(QrScanned(door, made(rig)))
    assert verdict.reason is reason
    # A token that fails its signature is forged or damaged, never a guess: it counts towards no lockout.
    assert not verdict.guess


def test_synced_state_overrules_the_token(rig: Rig) -> None:
    token = rig.token(claims(uses_allowed=3))
    rig.apply(pass_record(rig, 42, "111111", doors=(FRONT, GARAGE), uses_allowed=3, revoked=True))
    assert rig.decide(QrScanned(FRONT, token)).reason is Reason.REVOKED
    rig.apply(removals=(Removal(kind="pass", key="42"),))
    assert rig.decide(QrScanned(FRONT, token)).reason is Reason.EXPIRED


def test_qr_codes_that_are_not_ours_are_ignored(rig: Rig) -> None:
    assert rig.engine.decide(QrScanned(FRONT, "https://example.com/menu"), NOW) is None
    assert rig.engine.lockout.failures == []


# ---- lockout -----------------------------------------------------------------------------------------------


def test_wrong_codes_lock_guessable_entry_but_not_cards(rig: Rig) -> None:
    good = rig.code(NOW)
    wrong = [f"{n:08d}" for n in range(10_000_000, 10_000_010) if f"{n:08d}" != good][:5]
    for digits in wrong:
        rig.decide(CodeEntered(FRONT, digits))
    later = NOW + timedelta(seconds=1)
    assert rig.engine.lockout.locked(later.timestamp())
    for presentation in (
        CodeEntered(FRONT, good),
        IdEntered(FRONT, ALICE_ID),
    ):
        assert rig.decide(presentation, later).reason is Reason.LOCKED_OUT
    assert rig.decide(CardPresented(FRONT, ALICE_CARD), later).granted
    # The app-code QR names its credential, so typed guesses do not lock it (next step's code: `good` is kept).
    assert rig.decide(
        QrScanned(FRONT, app_code.AppCodeQr(500, rig.code(later + timedelta(seconds=30))).text()), later
    ).granted
    assert rig.decide(FaceAttempt(FRONT, ALICE), later).granted
    # After the first lockout (30 s) the right code works again.
    assert rig.decide(CodeEntered(FRONT, good), NOW + timedelta(seconds=31)).granted


def test_lockouts_grow_and_a_guard_clears_them() -> None:
    lockout = Lockout(LockoutPolicy(threshold=3, base_s=30, cap_s=100))
    t = 1_000_000.0
    lengths = []
    for _ in range(4):
        for _ in range(3):
            got = lockout.failure(t)
        lengths.append(got)
        t += (got or 0) + 1
    assert lengths == [30, 60, 100, 100]
    lockout.clear()
    assert not lockout.locked(t) and lockout.level == 0
    # A quiet hour starts the escalation afresh.
    for _ in range(3):
        lockout.failure(t)
    t += 7200
    for _ in range(3):
        got = lockout.failure(t)
    assert got == 30


def test_lockout_state_survives_a_restart() -> None:
    policy = LockoutPolicy()
    lockout = Lockout(policy)
    for i in range(5):
        lockout.failure(100.0 + i)
    restored = Lockout.loads(lockout.dumps(), policy)
    assert restored.locked(110.0) and restored.level == 1
    assert not Lockout.loads("{not json", policy).locked(110.0)


# ---- face as one equal alternative -----------------------------------------------------------------------


def test_failed_face_leaves_every_other_way_open(rig: Rig) -> None:
    failed = rig.decide(FaceAttempt(FRONT, None))
    assert failed.reason is Reason.UNKNOWN and not failed.guess
    for presentation in (
        CardPresented(FRONT, ALICE_CARD),
        IdEntered(FRONT, ALICE_ID),
        CodeEntered(FRONT, rig.code(NOW)),
    ):
        assert rig.decide(presentation).granted


def test_face_match_without_a_held_template_is_refused(rig: Rig) -> None:
    assert rig.decide(FaceAttempt(FRONT, ALICE)).granted
    assert rig.decide(FaceAttempt(FRONT, BOB)).reason is Reason.UNKNOWN  # Bob has no template here
    assert rig.decide(FaceAttempt(GARAGE, ALICE)).reason is Reason.METHOD_NOT_ALLOWED


def test_face_match_on_a_template_no_longer_held_is_refused(rig: Rig) -> None:
    assert rig.decide(FaceAttempt(FRONT, ALICE, 0.8, template=77)).granted
    # The gallery still had template 76 (erased or replaced by sync): the match is not honoured.
    assert rig.decide(FaceAttempt(FRONT, ALICE, 0.8, template=76)).reason is Reason.UNKNOWN


def test_face_too_close_between_two_people_is_refused_as_ambiguous(rig: Rig) -> None:
    verdict = rig.decide(FaceAttempt(FRONT, None, 0.6, ambiguous=True))
    assert (verdict.granted, verdict.reason) == (False, Reason.AMBIGUOUS)


def test_people_without_face_have_the_same_access(rig: Rig) -> None:
    for door_id in (FRONT, GARAGE):
        assert rig.decide(CardPresented(door_id, BOB_CARD)).granted
        assert rig.decide(CardPresented(door_id, ALICE_CARD)).granted
