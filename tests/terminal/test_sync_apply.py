"""terminals.sync_apply: only signed, addressed, in-sequence messages change the terminal's roster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core.wire.base import MAX_MESSAGE_BYTES, WireModel, encode
from gatehouse_core.wire.messages import Delta, Erased, InSync, Receipt, SnapshotPart
from gatehouse_core.wire.records import (
    EMPTY_ROSTER_HASH,
    CredentialRecord,
    DoorRecord,
    PersonRecord,
    Record,
    Removal,
    TemplateRecord,
    fingerprint,
    roster_hash,
)
from gatehouse_core.wire.signing import sign
from gatehouse_core.wire.topics import Channel, terminal_topic
from terminals.store import TerminalStore
from terminals.sync_apply import Outcome, SyncApplier

SITE = "maple"
TERMINAL = "t-1"
SYNC = terminal_topic(SITE, TERMINAL, Channel.SYNC)
RECEIPT = terminal_topic(SITE, TERMINAL, Channel.RECEIPT)
ALICE = "p-000000000000000a"
BOB = "p-000000000000000b"
CARD_HASH = "cd" * 32
SEALED = bytes(range(48))
UID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(scope="module")
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TerminalStore]:
    s = TerminalStore(tmp_path / "store.db")
    yield s
    s.close()


@pytest.fixture
def applier(store: TerminalStore, server_key: Ed25519PrivateKey) -> SyncApplier:
    return SyncApplier(store, server_key.public_key(), SITE, TERMINAL)


def door(id_: int) -> DoorRecord:
    return DoorRecord(id=id_, face=True, card=True, id_document=True, app_code=True)


def person(pseudonym: str, *, card: bool = True, templates: tuple[int, ...] = ()) -> PersonRecord:
    return PersonRecord(
        pseudonym=pseudonym,
        groups=(1,),
        credentials=(CredentialRecord(id=1, kind="card", hash=CARD_HASH),) if card else (),
        templates=tuple(TemplateRecord(id=t, model="m1", sealed=SEALED) for t in templates),
    )


def hash_of(records: list[Record]) -> str:
    return roster_hash((r.kind, r.key, fingerprint(r)) for r in records)


def delta(base: int, seq: int, *records: Record, removals: tuple[Removal, ...] = (), **kw: Any) -> Delta:
    fields: dict[str, Any] = {"site": SITE, "terminal": TERMINAL, "part": 1, "parts": 1}
    fields.update(kw)
    return Delta(base_seq=base, seq=seq, removals=removals, records=records, **fields)


def snapshot(
    seq: int,
    records: list[Record],
    *,
    part: int = 1,
    last: bool = True,
    sid: str = "ab" * 16,
    hash_: str | None = None,
    **kw: Any,
) -> SnapshotPart:
    """One snapshot part; the last carries the roster hash (by default that of its own records)."""
    fields: dict[str, Any] = {"site": SITE, "terminal": TERMINAL}
    fields.update(kw)
    return SnapshotPart(
        snapshot_id=sid,
        seq=seq,
        part=part,
        last=last,
        roster_hash=(hash_ or hash_of(records)) if last else None,
        records=tuple(records),
        **fields,
    )


def send(applier: SyncApplier, key: Ed25519PrivateKey, message: WireModel, topic: str = SYNC) -> Outcome:
    return applier.handle_sync(SYNC, sign(key, topic, encode(message)))


# ---- what gets applied ------------------------------------------------------------------------------------------


def test_valid_delta_is_applied(applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey) -> None:
    outcome = send(applier, server_key, delta(0, 3, door(1), person(ALICE)))
    assert (outcome.applied, outcome.ack, outcome.resync) == (True, True, False)
    assert store.applied_seq() == 3
    assert store.record("person", ALICE) == person(ALICE)
    assert store.roster_hash() == hash_of([door(1), person(ALICE)])
    assert not applier.busy()


def test_consecutive_deltas_apply(applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey) -> None:
    assert send(applier, server_key, delta(0, 1, person(ALICE))).applied
    assert send(applier, server_key, delta(1, 4, person(BOB))).applied
    outcome = send(applier, server_key, delta(4, 5, removals=(Removal(kind="person", key=ALICE),)))
    assert outcome.applied and outcome.ack
    assert store.applied_seq() == 5
    assert [r.key for r in store.records("person")] == [BOB]


def _unsigned(key: Ed25519PrivateKey, body: bytes) -> bytes:
    return body


def _wrong_key(key: Ed25519PrivateKey, body: bytes) -> bytes:
    return sign(Ed25519PrivateKey.generate(), SYNC, body)


def _other_terminal_topic(key: Ed25519PrivateKey, body: bytes) -> bytes:
    return sign(key, terminal_topic(SITE, "t-2", Channel.SYNC), body)


def _other_site_topic(key: Ed25519PrivateKey, body: bytes) -> bytes:
    return sign(key, terminal_topic("oak", TERMINAL, Channel.SYNC), body)


def _receipt_topic(key: Ed25519PrivateKey, body: bytes) -> bytes:
    return sign(key, RECEIPT, body)


def _tampered(key: Ed25519PrivateKey, body: bytes) -> bytes:
    signed = sign(key, SYNC, body)
    return signed.replace(b'"seq":3', b'"seq":9')


def _oversized(key: Ed25519PrivateKey, body: bytes) -> bytes:
    return sign(key, SYNC, body + b" " * MAX_MESSAGE_BYTES)


@pytest.mark.parametrize(
    "wrap",
    [_unsigned, _wrong_key, _other_terminal_topic, _other_site_topic, _receipt_topic, _tampered, _oversized],
)
def test_unverifiable_message_is_dropped(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey, wrap: Any
) -> None:
    body = encode(delta(0, 3, person(ALICE)))
    outcome = applier.handle_sync(SYNC, wrap(server_key, body))
    assert outcome == Outcome(note="forged")
    assert store.applied_seq() == 0 and store.roster_hash() == EMPTY_ROSTER_HASH
    # The same body, properly signed, would have been applied.
    assert applier.handle_sync(SYNC, sign(server_key, SYNC, body)).applied


@pytest.mark.parametrize(
    "message",
    [
        delta(0, 3, person(ALICE), terminal="t-2"),
        delta(0, 3, person(ALICE), site="oak"),
        snapshot(3, [person(ALICE)], terminal="t-2"),
        snapshot(3, [person(ALICE)], site="oak"),
    ],
    ids=["delta-other-terminal", "delta-other-site", "snapshot-other-terminal", "snapshot-other-site"],
)
def test_misaddressed_message_is_dropped(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey, message: WireModel
) -> None:
    outcome = send(applier, server_key, message)
    assert outcome == Outcome(note="misaddressed")
    assert store.applied_seq() == 0 and store.record("person", ALICE) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b"not json", b'{"type":"delta"}', encode(Receipt(terminal=TERMINAL))],
    ids=["empty", "empty-object", "garbage", "incomplete", "receipt-on-sync"],
)
def test_signed_but_invalid_body_is_dropped(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey, body: bytes
) -> None:
    assert applier.handle_sync(SYNC, sign(server_key, SYNC, body)) == Outcome(note="invalid")
    assert store.applied_seq() == 0


# ---- sequence ---------------------------------------------------------------------------------------------------


def test_replayed_grant_does_not_undo_a_later_revocation(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    grant = delta(0, 1, person(ALICE, card=True))
    revoke = delta(1, 2, person(ALICE, card=False))
    assert send(applier, server_key, grant).applied
    assert send(applier, server_key, revoke).applied
    outcome = send(applier, server_key, grant)
    assert outcome == Outcome(note="replay")
    assert store.record("person", ALICE) == person(ALICE, card=False)
    assert store.applied_seq() == 2


def test_duplicate_delta_is_ignored(applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey) -> None:
    send(applier, server_key, delta(0, 2, person(ALICE)))
    send(applier, server_key, delta(2, 3, removals=(Removal(kind="person", key=ALICE),)))
    assert send(applier, server_key, delta(0, 2, person(ALICE))).note == "replay"
    assert store.record("person", ALICE) is None


@pytest.mark.parametrize(
    ("base", "seq"),
    [(3, 4), (1, 6), (0, 6)],
    ids=["gap", "overlapping-start", "from-before-applied"],
)
def test_delta_not_continuing_from_applied_asks_for_resync(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey, base: int, seq: int
) -> None:
    send(applier, server_key, delta(0, 2, door(1)))
    outcome = send(applier, server_key, delta(base, seq, person(ALICE)))
    assert (outcome.applied, outcome.resync) == (False, True)
    assert store.applied_seq() == 2
    assert store.record("person", ALICE) is None


def test_multi_part_delta_applies_part_by_part(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 1, person(BOB)))
    first = send(applier, server_key, delta(1, 5, removals=(Removal(kind="person", key=BOB),), part=1, parts=3))
    assert first.applied and first.ack  # Bob's erasure is reported at once
    assert store.record("person", BOB) is None and store.applied_seq() == 1
    assert applier.busy()
    second = send(applier, server_key, delta(1, 5, door(1), part=2, parts=3))
    assert second.applied and not second.ack
    assert store.record("door", "1") == door(1) and store.applied_seq() == 1
    third = send(applier, server_key, delta(1, 5, person(ALICE), part=3, parts=3))
    assert third.applied and third.ack
    assert store.applied_seq() == 5
    assert not applier.busy()
    assert store.roster_hash() == hash_of([door(1), person(ALICE)])


@pytest.mark.parametrize(
    "wrong",
    [
        delta(0, 5, door(2), part=3, parts=3),
        delta(0, 5, door(2), part=1, parts=3),
        delta(0, 6, door(2), part=2, parts=3),
        delta(1, 5, door(2), part=2, parts=3),
    ],
    ids=["skipped-part", "repeated-part", "other-range", "other-base"],
)
def test_multi_part_delta_out_of_order_asks_for_resync(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey, wrong: Delta
) -> None:
    assert send(applier, server_key, delta(0, 5, door(1), part=1, parts=3)).applied
    outcome = send(applier, server_key, wrong)
    assert (outcome.applied, outcome.resync) == (False, True)
    assert store.record("door", "2") is None
    assert store.applied_seq() == 0
    assert not applier.busy()
    # The rest of the interrupted delta is refused too; the server starts it again from part 1.
    assert send(applier, server_key, delta(0, 5, door(3), part=2, parts=3)).resync
    assert send(applier, server_key, delta(0, 5, door(1), part=1, parts=2)).applied
    assert send(applier, server_key, delta(0, 5, door(3), part=2, parts=2)).applied
    assert store.applied_seq() == 5


def test_later_part_without_first_asks_for_resync(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    outcome = send(applier, server_key, delta(0, 5, door(1), part=2, parts=2))
    assert outcome.resync and not outcome.applied
    assert store.record("door", "1") is None


# ---- snapshots ------------------------------------------------------------------------------------------------


def test_snapshot_parts_are_staged_and_swapped_at_the_last(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 2, door(1), person(BOB, templates=(7,))))
    roster: list[Record] = [door(2), person(ALICE)]
    whole = hash_of(roster)
    first = send(applier, server_key, snapshot(9, roster[:1], part=1, last=False))
    assert first == Outcome(note="staged")
    assert applier.busy()
    assert store.record("door", "1") == door(1) and store.applied_seq() == 2
    last = send(applier, server_key, snapshot(9, roster[1:], part=2, hash_=whole))
    assert (last.applied, last.ack, last.resync) == (True, True, False)
    assert store.roster_hash() == whole
    assert store.applied_seq() == 9 and store.last_snapshot() == "ab" * 16
    assert not applier.busy()
    assert sorted(store.pending_erasures(), key=repr) == sorted(
        [Erased(kind="person", ref=BOB), Erased(kind="template", ref="7")], key=repr
    )
    # Deltas continue from the snapshot's sequence.
    assert send(applier, server_key, delta(9, 10, door(3))).applied


def test_snapshot_older_than_applied_is_ignored(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 5, door(1)))
    assert send(applier, server_key, snapshot(4, [door(2)], sid="cd" * 16)).note == "replay"
    assert store.roster_hash() == hash_of([door(1)]) and store.applied_seq() == 5
    assert not applier.busy()


def test_same_snapshot_again_is_ignored(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    assert send(applier, server_key, snapshot(4, [door(1)])).applied
    assert send(applier, server_key, delta(4, 5, removals=(Removal(kind="door", key="1"),))).applied
    assert send(applier, server_key, snapshot(4, [door(1)])).note == "replay"
    # Even at a sequence not below what is applied, the same snapshot id is not swapped in twice.
    assert send(applier, server_key, snapshot(6, [door(1)])).note == "replay"
    assert store.count("door") == 0 and store.applied_seq() == 5


def test_snapshot_after_a_gap_brings_the_terminal_up_to_date(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 2, door(1)))
    assert send(applier, server_key, delta(5, 6, door(2))).resync
    assert send(applier, server_key, snapshot(6, [door(1), door(2)])).applied
    assert store.applied_seq() == 6 and store.count("door") == 2


def test_delta_mid_snapshot_abandons_staging(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    roster: list[Record] = [door(2), person(ALICE)]
    send(applier, server_key, snapshot(9, roster[:1], part=1, last=False))
    assert store.roster_hash("staging") == hash_of(roster[:1])
    outcome = send(applier, server_key, delta(0, 1, door(1)))
    assert outcome.applied
    assert store.roster_hash("staging") == EMPTY_ROSTER_HASH
    late = send(applier, server_key, snapshot(9, roster[1:], part=2, hash_=hash_of(roster)))
    assert (late.applied, late.resync) == (False, True)
    assert store.roster_hash() == hash_of([door(1)]) and store.applied_seq() == 1
    assert store.last_snapshot() is None


def test_snapshot_with_wrong_hash_keeps_the_old_roster(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 2, door(1), person(ALICE, templates=(3,))))
    before = store.roster_hash()
    outcome = send(applier, server_key, snapshot(9, [door(2)], hash_=hash_of([door(2), door(3)])))
    assert (outcome.applied, outcome.resync, outcome.note) == (False, True, "hash mismatch")
    assert store.roster_hash() == before and store.applied_seq() == 2
    assert store.last_snapshot() is None
    assert store.pending_erasures() == []
    assert not applier.busy()
    # The same snapshot id is not burnt: sent again correctly, it is swapped in.
    assert send(applier, server_key, snapshot(9, [door(2)])).applied


@pytest.mark.parametrize(
    "wrong",
    [
        snapshot(9, [door(3)], part=3, last=False),
        snapshot(9, [door(2), door(3)], part=3),
        snapshot(10, [door(2), door(3)], part=2),
        snapshot(9, [door(2), door(3)], part=2, sid="cd" * 16),
    ],
    ids=["skipped-part", "skipped-to-last", "other-seq", "other-snapshot"],
)
def test_snapshot_part_out_of_order_asks_for_resync(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey, wrong: SnapshotPart
) -> None:
    send(applier, server_key, delta(0, 2, door(1)))
    assert send(applier, server_key, snapshot(9, [door(2)], part=1, last=False)).note == "staged"
    outcome = send(applier, server_key, wrong)
    assert (outcome.applied, outcome.resync) == (False, True)
    assert not applier.busy()
    assert store.roster_hash("staging") == EMPTY_ROSTER_HASH
    assert store.roster_hash() == hash_of([door(1)]) and store.applied_seq() == 2


def test_snapshot_part_without_first_asks_for_resync(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    outcome = send(applier, server_key, snapshot(9, [door(1)], part=2))
    assert outcome.resync and not outcome.applied
    assert store.roster_hash() == EMPTY_ROSTER_HASH


def test_snapshot_cancels_a_half_received_delta(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 5, door(1), part=1, parts=2))
    assert send(applier, server_key, snapshot(6, [door(2)])).applied
    assert send(applier, server_key, delta(0, 5, door(3), part=2, parts=2)).note == "replay"
    assert store.applied_seq() == 6 and store.records("door") == [door(2)]


# ---- receipts -------------------------------------------------------------------------------------------------


RECEIPT_MESSAGE = Receipt(terminal=TERMINAL, events=(UID,), erasures=(Erased(kind="person", ref=ALICE),))


def test_valid_receipt_is_returned(applier: SyncApplier, server_key: Ed25519PrivateKey) -> None:
    payload = sign(server_key, RECEIPT, encode(RECEIPT_MESSAGE))
    assert applier.handle_receipt(RECEIPT, payload) == RECEIPT_MESSAGE


def _receipt_unsigned(key: Ed25519PrivateKey) -> bytes:
    return encode(RECEIPT_MESSAGE)


def _receipt_wrong_key(key: Ed25519PrivateKey) -> bytes:
    return sign(Ed25519PrivateKey.generate(), RECEIPT, encode(RECEIPT_MESSAGE))


def _receipt_for_sync_topic(key: Ed25519PrivateKey) -> bytes:
    return sign(key, SYNC, encode(RECEIPT_MESSAGE))


def _receipt_for_other_terminal_topic(key: Ed25519PrivateKey) -> bytes:
    return sign(key, terminal_topic(SITE, "t-2", Channel.RECEIPT), encode(RECEIPT_MESSAGE))


def _receipt_addressed_elsewhere(key: Ed25519PrivateKey) -> bytes:
    return sign(key, RECEIPT, encode(Receipt(terminal="t-2", events=(UID,))))


def _receipt_invalid(key: Ed25519PrivateKey) -> bytes:
    return sign(key, RECEIPT, b'{"type":"receipt","terminal":"t-1","events":["x"]}')


def _receipt_oversized(key: Ed25519PrivateKey) -> bytes:
    return sign(key, RECEIPT, encode(RECEIPT_MESSAGE) + b" " * MAX_MESSAGE_BYTES)


@pytest.mark.parametrize(
    "forge",
    [
        _receipt_unsigned,
        _receipt_wrong_key,
        _receipt_for_sync_topic,
        _receipt_for_other_terminal_topic,
        _receipt_addressed_elsewhere,
        _receipt_invalid,
        _receipt_oversized,
    ],
)
def test_forged_or_misaddressed_receipt_is_dropped(
    applier: SyncApplier, server_key: Ed25519PrivateKey, forge: Any
) -> None:
    assert applier.handle_receipt(RECEIPT, forge(server_key)) is None


# ---- in sync --------------------------------------------------------------------------------------------------

NONCE = "0123456789abcdef" * 2


def in_sync(seq: int = 3, **kw: Any) -> InSync:
    fields: dict[str, Any] = {"site": SITE, "terminal": TERMINAL, "nonce": NONCE}
    fields.update(kw)
    return InSync(seq=seq, **fields)


def test_in_sync_is_passed_on_and_changes_nothing(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 3, person(ALICE)))
    before = store.roster_hash()
    message = in_sync(3)
    outcome = send(applier, server_key, message)
    assert outcome == Outcome(note="in_sync", in_sync=message)
    assert store.applied_seq() == 3 and store.roster_hash() == before


def test_in_sync_does_not_disturb_a_half_received_delta(
    applier: SyncApplier, store: TerminalStore, server_key: Ed25519PrivateKey
) -> None:
    send(applier, server_key, delta(0, 5, door(1), part=1, parts=2))
    assert send(applier, server_key, in_sync(5)).in_sync is not None
    assert applier.busy()  # the terminal's hold sees it half-way and stays held
    assert send(applier, server_key, delta(0, 5, door(2), part=2, parts=2)).applied
    assert store.applied_seq() == 5


@pytest.mark.parametrize(
    "wrap",
    [_unsigned, _wrong_key, _other_terminal_topic, _other_site_topic, _receipt_topic, _oversized],
)
def test_unverifiable_in_sync_is_dropped(applier: SyncApplier, server_key: Ed25519PrivateKey, wrap: Any) -> None:
    assert applier.handle_sync(SYNC, wrap(server_key, encode(in_sync()))) == Outcome(note="forged")


def test_tampered_in_sync_is_dropped(applier: SyncApplier, server_key: Ed25519PrivateKey) -> None:
    signed = sign(server_key, SYNC, encode(in_sync(3)))
    forged = signed.replace(b'"seq":3', b'"seq":0')
    assert forged != signed
    assert applier.handle_sync(SYNC, forged) == Outcome(note="forged")


@pytest.mark.parametrize(
    "message",
    [in_sync(terminal="t-2"), in_sync(site="oak")],
    ids=["other-terminal", "other-site"],
)
def test_misaddressed_in_sync_is_dropped(applier: SyncApplier, server_key: Ed25519PrivateKey, message: InSync) -> None:
    assert send(applier, server_key, message) == Outcome(note="misaddressed")


@pytest.mark.parametrize(
    "body",
    [
        b'{"v":1,"type":"in_sync","site":"maple","terminal":"t-1","seq":3}',
        b'{"v":1,"type":"in_sync","site":"maple","terminal":"t-1","seq":3,"nonce":"ABC"}',
        b'{"v":1,"type":"in_sync","site":"maple","terminal":"t-1","seq":-1,"nonce":"' + NONCE.encode() + b'"}',
    ],
    ids=["no-nonce", "bad-nonce", "negative-seq"],
)
def test_invalid_in_sync_is_dropped(applier: SyncApplier, server_key: Ed25519PrivateKey, body: bytes) -> None:
    assert applier.handle_sync(SYNC, sign(server_key, SYNC, body)) == Outcome(note="invalid")
