"""terminals.offline_bound and its effect on decisions: what a terminal cut off from the server still lets in."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core.credential_hash import hash_card, hash_id_document, hash_pass_code
from gatehouse_core.wire.messages import EntryMethod
from gatehouse_core.wire.records import (
    CredentialRecord,
    DoorRecord,
    GroupRecord,
    OfflinePolicy,
    PassRecord,
    PersonRecord,
    Record,
    SiteRecord,
    TemplateRecord,
)
from terminals import store as store_module
from terminals.decision import DecisionEngine, Reason, Verdict
from terminals.inputs import CardPresented, CodeEntered, FaceAttempt, IdEntered, Presentation
from terminals.lockout import Lockout, LockoutPolicy
from terminals.offline_bound import WITHIN, OfflineState, contact_refresh, judge
from terminals.runtime import TerminalRuntime
from terminals.store import TerminalStore

DOOR = 1
RESIDENT, STAFF, VISITOR = "p-00000000000000a1", "p-00000000000000b1", "p-00000000000000c1"
CARDS = {RESIDENT: "04A2B3C4D5E6F7", STAFF: "04A2B3C4D5E6F8", VISITOR: "04A2B3C4D5E6F9"}
STAFF_ID = "G12345678"
PASS_CODE = "123456"
SEALED = b"\x01" + bytes(range(40))
BOUND = timedelta(hours=72)


def site(policy: OfflinePolicy = OfflinePolicy.KEEP_RESIDENTS, hours: int = 72) -> SiteRecord:
    return SiteRecord(timezone="UTC", face_enabled=True, holidays=(), max_offline_hours=hours, offline_policy=policy)


# ---- judge: the pure rule ------------------------------------------------------------------------------------

T = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_terminal_that_never_heard_from_the_server_or_holds_no_site_is_within_the_bound() -> None:
    assert judge(T + timedelta(days=400), None, site()) == WITHIN
    assert judge(T + timedelta(days=400), T, None) == WITHIN


@pytest.mark.parametrize(
    ("silent", "past"),
    [(timedelta(0), False), (BOUND - timedelta(seconds=1), False), (BOUND, True), (BOUND * 10, True)],
)
def test_the_bound_is_max_offline_hours_after_the_last_contact(silent: timedelta, past: bool) -> None:
    state = judge(T + silent, T, site(OfflinePolicy.FAIL_SECURE))
    assert state.past is past
    assert (state.policy, state.last_contact, state.bound) == (OfflinePolicy.FAIL_SECURE, T, BOUND)


def test_a_credential_is_confirmed_when_held_a_whole_bound_before_the_last_contact() -> None:
    state = OfflineState(past=True, last_contact=T, bound=BOUND)
    assert state.confirmed(T - BOUND)
    assert not state.confirmed(T - BOUND + timedelta(seconds=1))
    assert state.confirmed(None)  # held before received times were kept


def test_a_connected_terminal_asks_for_a_sign_of_life_well_within_its_bound() -> None:
    assert contact_refresh(site(hours=72)) == timedelta(hours=6)
    assert contact_refresh(site(hours=1)) == timedelta(minutes=15)
    assert contact_refresh(None) == timedelta(hours=6)


# ---- decisions on a real store -------------------------------------------------------------------------------


@dataclass
class Rig:
    store: TerminalStore
    engine: DecisionEngine
    key: bytes
    received: float  # wall time the roster arrived (received times are the store's own clock)

    def apply(self, *records: Record) -> None:
        self.store.apply((), records, None)
        self.engine.synced(frozenset(r.key for r in records if isinstance(r, PersonRecord)), full=False)

    def cut_off(self, contact_after: timedelta, silent: timedelta) -> datetime:
        """Last contact `contact_after` the roster arrived, then silence; returns the moment to decide at."""
        contact = self.received + contact_after.total_seconds()
        self.store.heard_from_server(contact)
        return datetime.fromtimestamp(contact, UTC) + silent

    def decide(self, presentation: Presentation, now: datetime) -> Verdict:
        verdict = self.engine.decide(presentation, now)
        assert verdict is not None
        self.store.record_decision(verdict.event(now))
        return verdict


def person(key: bytes, pseudonym: str, kind: str, **extra: object) -> PersonRecord:
    credentials = [
        CredentialRecord(id=len(pseudonym) + ord(pseudonym[-2]), kind="card", hash=hash_card(key, CARDS[pseudonym]))
    ]
    if extra.get("id_number"):
        credentials.append(CredentialRecord(id=900, kind="id_document", hash=hash_id_document(key, STAFF_ID)))
    templates = (TemplateRecord(id=77, model="buffalo_s", sealed=SEALED),) if extra.get("face") else ()
    return PersonRecord.model_validate(
        {
            "pseudonym": pseudonym,
            "groups": (10,),
            "credentials": tuple(credentials),
            "templates": templates,
            "person_kind": kind,
        }
    )


def rig_for(tmp_path: Path, policy: OfflinePolicy) -> Rig:
    store = TerminalStore(tmp_path / "terminal.db")
    key = os.urandom(32)
    received = time.time()
    store.apply(
        (),
        [
            site(policy),
            DoorRecord(id=DOOR, face=True, card=True, id_document=True, app_code=True),
            GroupRecord(id=10, doors=(DOOR,), windows=tuple((d, 0, 1440) for d in range(7)), open_on_holidays=True),
            person(key, RESIDENT, "resident", face=True),
            person(key, STAFF, "staff", id_number=True),
            person(key, VISITOR, "visitor"),
            PassRecord(
                id=5,
                doors=(DOOR,),
                valid_from=datetime(2000, 1, 1, tzinfo=UTC),
                valid_until=datetime(2099, 1, 1, tzinfo=UTC),
                uses_allowed=100,
                uses_count=0,
                code_hash=hash_pass_code(key, PASS_CODE),
            ),
        ],
        7,
    )
    engine = DecisionEngine(
        store,
        site="maple-court",
        credential_key=key,
        seal_key=os.urandom(32),
        server_key=Ed25519PrivateKey.generate().public_key(),
        lockout=Lockout(LockoutPolicy()),
    )
    return Rig(store, engine, key, received)


@pytest.fixture
def keep(tmp_path: Path) -> Iterator[Rig]:
    rig = rig_for(tmp_path, OfflinePolicy.KEEP_RESIDENTS)
    yield rig
    rig.store.close()


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[Rig]:
    rig = rig_for(tmp_path, OfflinePolicy.FAIL_SECURE)
    yield rig
    rig.store.close()


LONG_HELD = timedelta(hours=100)  # the roster arrived 100 h before the last contact: every credential confirmed
PAST = BOUND + timedelta(minutes=1)


def test_within_the_bound_everyone_gets_in_and_nothing_is_marked(keep: Rig) -> None:
    now = keep.cut_off(LONG_HELD, BOUND - timedelta(minutes=1))
    for presentation in (CardPresented(DOOR, CARDS[RESIDENT]), CardPresented(DOOR, CARDS[VISITOR])):
        verdict = keep.decide(presentation, now)
        assert verdict.granted and not verdict.past_bound
    assert keep.decide(CodeEntered(DOOR, PASS_CODE), now).granted
    for event in keep.store.pending_events(10):
        assert not event.past_offline_bound
        assert "past_offline_bound" not in event.model_dump_json()  # encodes as before the flag existed


def test_keep_residents_past_the_bound_residents_and_staff_keep_their_access(keep: Rig) -> None:
    now = keep.cut_off(LONG_HELD, PAST)
    for presentation in (
        CardPresented(DOOR, CARDS[RESIDENT]),
        FaceAttempt(DOOR, RESIDENT, template=77),
        CardPresented(DOOR, CARDS[STAFF]),
        IdEntered(DOOR, STAFF_ID),
    ):
        verdict = keep.decide(presentation, now)
        assert verdict.granted and verdict.past_bound, presentation


def test_keep_residents_past_the_bound_refuses_visitors_and_their_passes(keep: Rig) -> None:
    now = keep.cut_off(LONG_HELD, PAST)
    visitor = keep.decide(CardPresented(DOOR, CARDS[VISITOR]), now)
    assert (visitor.granted, visitor.reason, visitor.person) == (False, Reason.OFFLINE_BOUND, VISITOR)
    code = keep.decide(CodeEntered(DOOR, PASS_CODE), now)
    assert (code.granted, code.reason, code.pass_id, code.method) == (
        False,
        Reason.OFFLINE_BOUND,
        5,
        EntryMethod.VISITOR_CODE,
    )
    # Refused, so not a use of the pass: nothing for the replay cache.
    assert keep.store.local_pass_uses(5) == set()


def test_past_the_bound_every_decision_is_marked_in_its_event(keep: Rig) -> None:
    now = keep.cut_off(LONG_HELD, PAST)
    keep.decide(CardPresented(DOOR, CARDS[RESIDENT]), now)
    unknown = keep.decide(CardPresented(DOOR, "0411111111111111"[:14]), now)
    assert unknown.reason is Reason.UNKNOWN and unknown.past_bound  # refused anyway: keeps its own reason
    keep.decide(CardPresented(DOOR, CARDS[VISITOR]), now)
    events = keep.store.pending_events(10)
    assert len(events) == 3 and all(e.past_offline_bound for e in events)
    assert json.loads(events[0].model_dump_json())["past_offline_bound"] is True


def test_credentials_received_within_a_bound_of_the_last_contact_are_refused(keep: Rig) -> None:
    # The roster arrived 10 h before the last contact: none of it could be confirmed.
    now = keep.cut_off(timedelta(hours=10), PAST)
    card = keep.decide(CardPresented(DOOR, CARDS[RESIDENT]), now)
    assert (card.granted, card.reason) == (False, Reason.OFFLINE_BOUND)
    face = keep.decide(FaceAttempt(DOOR, RESIDENT, template=77), now)
    assert (face.granted, face.reason) == (False, Reason.OFFLINE_BOUND)


def test_a_credential_keeps_its_received_time_when_its_record_changes(keep: Rig) -> None:
    # The resident's record comes again (a new group, say) with the same card: still the card received long ago.
    keep.apply(person(keep.key, RESIDENT, "resident", face=True))
    now = keep.cut_off(LONG_HELD, PAST)
    assert keep.decide(CardPresented(DOOR, CARDS[RESIDENT]), now).granted


def test_a_card_added_shortly_before_the_cut_off_is_refused_while_the_older_one_opens(
    keep: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_card = "04AABBCCDDEEFF"
    added = keep.received + timedelta(hours=100).total_seconds()
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: added))
    keep.apply(
        PersonRecord(
            pseudonym=RESIDENT,
            groups=(10,),
            credentials=(
                CredentialRecord(id=1, kind="card", hash=hash_card(keep.key, CARDS[RESIDENT])),
                CredentialRecord(id=2, kind="card", hash=hash_card(keep.key, new_card)),
            ),
        )
    )
    # The last contact an hour after the new card arrived: the old card was held for 101 h by then, the new one 1 h.
    now = keep.cut_off(timedelta(hours=101), PAST)
    assert keep.decide(CardPresented(DOOR, CARDS[RESIDENT]), now).granted
    new = keep.decide(CardPresented(DOOR, new_card), now)
    assert (new.granted, new.reason, new.person) == (False, Reason.OFFLINE_BOUND, RESIDENT)


def test_fail_secure_past_the_bound_only_staff_cards_open(secure: Rig) -> None:
    now = secure.cut_off(LONG_HELD, PAST)
    staff = secure.decide(CardPresented(DOOR, CARDS[STAFF]), now)
    assert staff.granted and staff.past_bound
    for presentation in (
        IdEntered(DOOR, STAFF_ID),  # staff, but not a card
        CardPresented(DOOR, CARDS[RESIDENT]),
        FaceAttempt(DOOR, RESIDENT, template=77),
        CardPresented(DOOR, CARDS[VISITOR]),
        CodeEntered(DOOR, PASS_CODE),
    ):
        verdict = secure.decide(presentation, now)
        assert (verdict.granted, verdict.reason, verdict.past_bound) == (False, Reason.OFFLINE_BOUND, True)


def test_fail_secure_within_the_bound_changes_nothing(secure: Rig) -> None:
    now = secure.cut_off(LONG_HELD, BOUND - timedelta(minutes=1))
    assert secure.decide(CardPresented(DOOR, CARDS[RESIDENT]), now).granted


def test_the_policy_stops_as_soon_as_the_server_is_heard_again(secure: Rig) -> None:
    now = secure.cut_off(LONG_HELD, PAST)
    assert not secure.decide(CardPresented(DOOR, CARDS[RESIDENT]), now).granted
    secure.store.heard_from_server(now.timestamp())
    verdict = secure.decide(CardPresented(DOOR, CARDS[RESIDENT]), now)
    assert verdict.granted and not verdict.past_bound


# ---- the store keeps what the bound needs --------------------------------------------------------------------


def test_the_last_contact_survives_a_restart(tmp_path: Path) -> None:
    store = TerminalStore(tmp_path / "terminal.db")
    assert store.last_contact() is None
    store.heard_from_server(1_800_000_000.5)
    store.close()
    store = TerminalStore(tmp_path / "terminal.db")
    assert store.last_contact() == datetime.fromtimestamp(1_800_000_000.5, UTC)
    # Written at most once a minute (each write is an fsync); the newest is still what the terminal judges by.
    store.heard_from_server(1_800_000_010.0)
    assert store.last_contact() == datetime.fromtimestamp(1_800_000_010.0, UTC)
    store.close()
    store = TerminalStore(tmp_path / "terminal.db")
    assert store.last_contact() == datetime.fromtimestamp(1_800_000_000.5, UTC)
    store.close()


def test_a_snapshot_keeps_received_times_of_credentials_it_still_holds(keep: Rig) -> None:
    old = keep.store.received_at("card", hash_card(keep.key, CARDS[RESIDENT]))
    template = keep.store.received_at("template", "77")
    assert old is not None and template is not None
    keep.store.stage_reset()
    new_card = "04AABBCCDDEEFF"
    keep.store.stage(
        [
            site(),
            person(keep.key, RESIDENT, "resident", face=True),
            PersonRecord(
                pseudonym=STAFF,
                groups=(10,),
                credentials=(CredentialRecord(id=3, kind="card", hash=hash_card(keep.key, new_card)),),
                person_kind="staff",
            ),
        ]
    )
    erased = keep.store.swap_in("snap-1", 8, keep.store.roster_hash("staging"))
    assert erased is not None
    assert keep.store.received_at("card", hash_card(keep.key, CARDS[RESIDENT])) == old
    assert keep.store.received_at("template", "77") == template
    assert keep.store.received_at("card", hash_card(keep.key, new_card)) is not None
    assert keep.store.received_at("card", hash_card(keep.key, CARDS[STAFF])) is None  # no longer held


def test_credentials_held_before_received_times_were_kept_count_as_confirmed(tmp_path: Path) -> None:
    rig = rig_for(tmp_path, OfflinePolicy.KEEP_RESIDENTS)
    # A store from before this version: no received times at all.
    rig.store._db.execute("DELETE FROM received")
    rig.store._db.execute("DELETE FROM meta WHERE key = 'received_kept'")
    rig.store.close()
    store = TerminalStore(tmp_path / "terminal.db")
    assert store.received_at("card", hash_card(rig.key, CARDS[RESIDENT])) is None
    assert store.received_at("template", "77") is None
    assert store._db.execute("SELECT count(*) FROM received WHERE at = 0").fetchone()[0] > 0
    store.close()


# ---- a connected terminal asks for a sign of life -----------------------------------------------------------


def contact_due(last_contact: datetime | None, since_birth_s: float, hours: int = 72) -> bool:
    """TerminalRuntime._contact_due on just what it reads: the site record, the last contact and the last birth."""
    loop = SimpleNamespace(
        engine=SimpleNamespace(policy=SimpleNamespace(site=site(hours=hours))),
        store=SimpleNamespace(last_contact=lambda: last_contact),
        _last_birth=1_000.0,
    )
    return TerminalRuntime._contact_due(loop, 1_000.0 + since_birth_s)  # type: ignore[arg-type]


def test_a_quiet_connected_terminal_announces_itself_every_quarter_of_the_bound() -> None:
    now = datetime.now(UTC)
    quarter = timedelta(hours=1).total_seconds()
    assert not contact_due(now - timedelta(minutes=59), quarter, hours=4)  # heard from recently
    assert not contact_due(now - timedelta(hours=2), quarter - 1, hours=4)  # asked a moment ago
    assert contact_due(now - timedelta(hours=2), quarter, hours=4)
    assert contact_due(None, 6 * 3600.0)  # never heard from the server: asks every 6 hours at most
    assert not contact_due(now - timedelta(hours=5), 5 * 3600.0)  # a 72 h bound: every 6 hours
