"""Sync wire objects: strict validation at the edge, round trips, topic-bound signatures, roster hashing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core.wire.base import MAX_MESSAGE_BYTES, MessageError, WireModel, decode, encode
from gatehouse_core.wire.messages import (
    MAX_EVENTS_PER_BATCH,
    Ack,
    Birth,
    Delta,
    Erased,
    EventBatch,
    EventRecord,
    InSync,
    Receipt,
    SnapshotPart,
)
from gatehouse_core.wire.records import (
    EMPTY_ROSTER_HASH,
    CredentialRecord,
    DoorRecord,
    GroupRecord,
    PassRecord,
    PersonRecord,
    Removal,
    SiteRecord,
    TemplateRecord,
    fingerprint,
    roster_hash,
)
from gatehouse_core.wire.signing import MAGIC, SignatureError, sign, verify
from gatehouse_core.wire.topics import Channel, terminal_topic

HASH = "ab" * 32
PSEUDONYM = "p-0123456789abcdef"
UID = "0f8fad5b-d9cb-469f-a165-70867728950e"
SNAPSHOT_ID = "0123456789abcdef" * 2
SEALED = bytes(range(256))[:64]


def payload(data: Any) -> bytes:
    return json.dumps(data).encode()


def delta_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 1,
        "type": "delta",
        "site": "maple",
        "terminal": "t-1",
        "part": 1,
        "parts": 1,
        "base_seq": 4,
        "seq": 5,
        "removals": [{"kind": "person", "key": PSEUDONYM}],
        "records": [{"kind": "door", "id": 1, "face": False, "card": True, "id_document": True, "app_code": True}],
    }
    data.update(overrides)
    return data


def snapshot_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 1,
        "type": "snapshot",
        "site": "maple",
        "terminal": "t-1",
        "part": 1,
        "last": True,
        "snapshot_id": SNAPSHOT_ID,
        "seq": 9,
        "roster_hash": HASH,
        "records": [],
    }
    data.update(overrides)
    return data


def person_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "person",
        "pseudonym": PSEUDONYM,
        "groups": [1],
        "credentials": [{"id": 1, "kind": "card", "hash": HASH, "sealed": None}],
        "templates": [{"id": 2, "model": "m1", "sealed": base64.b64encode(SEALED).decode()}],
    }
    data.update(overrides)
    return data


def event_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uid": UID,
        "door": 1,
        "method": "card",
        "decision": "grant",
        "reason": "ok",
        "person": PSEUDONYM,
        "pass_id": None,
        "at": "2026-11-23T08:00:00+00:00",
    }
    data.update(overrides)
    return data


def batch_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"v": 1, "type": "events", "terminal": "t-1", "events": [event_dict()]}
    data.update(overrides)
    return data


def person(**overrides: Any) -> PersonRecord:
    data: dict[str, Any] = {
        "pseudonym": PSEUDONYM,
        "groups": (1, 2),
        "credentials": (CredentialRecord(id=1, kind="card", hash=HASH), CredentialRecord(id=2, kind="app_code")),
        "templates": (TemplateRecord(id=3, model="m1", sealed=SEALED),),
    }
    data.update(overrides)
    return PersonRecord(**data)


# ---- validation ------------------------------------------------------------------------------------------------


def test_valid_dicts_decode() -> None:
    # The invalid cases below differ from these in one field only.
    assert decode(Delta, payload(delta_dict())).seq == 5
    assert decode(SnapshotPart, payload(snapshot_dict())).last
    assert decode(SnapshotPart, payload(snapshot_dict(last=False, roster_hash=None))).roster_hash is None
    assert decode(PersonRecord, payload(person_dict())).templates[0].sealed == SEALED
    assert decode(EventBatch, payload(batch_dict())).events[0].uid == UID


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(delta_dict(extra=1), id="unknown-field"),
        pytest.param(delta_dict(signature="x"), id="unknown-field-signature"),
        pytest.param(delta_dict(seq="5"), id="seq-as-string"),
        pytest.param(delta_dict(seq=True), id="seq-as-bool"),
        pytest.param(delta_dict(seq=5.0), id="seq-as-float"),
        pytest.param(delta_dict(base_seq=-1), id="negative-base"),
        pytest.param(delta_dict(seq=4), id="seq-equals-base"),
        pytest.param(delta_dict(seq=3), id="seq-below-base"),
        pytest.param(delta_dict(part=2, parts=1), id="part-beyond-parts"),
        pytest.param(delta_dict(part=0), id="part-zero"),
        pytest.param(delta_dict(parts=0, part=0), id="parts-zero"),
        pytest.param(delta_dict(parts=100_001), id="too-many-parts"),
        pytest.param(delta_dict(part=True), id="part-as-bool"),
        pytest.param(delta_dict(v=2), id="wrong-version"),
        pytest.param(delta_dict(type="snapshot"), id="wrong-type"),
        pytest.param(delta_dict(site=""), id="empty-site"),
        pytest.param(delta_dict(terminal="t" * 65), id="long-terminal"),
        pytest.param(delta_dict(removals=[{"kind": "person", "key": ""}]), id="empty-removal-key"),
        pytest.param(delta_dict(removals=[{"kind": "credential", "key": "1"}]), id="unknown-removal-kind"),
        pytest.param(delta_dict(removals=[{"kind": "person", "key": PSEUDONYM, "x": 1}]), id="removal-extra"),
        pytest.param(delta_dict(records=[{"kind": "door", "id": 1}]), id="incomplete-door"),
        pytest.param(
            delta_dict(
                records=[{"kind": "door", "id": 0, "face": False, "card": True, "id_document": True, "app_code": True}]
            ),
            id="door-id-zero",
        ),
        pytest.param(
            delta_dict(
                records=[{"kind": "door", "id": 1, "face": 0, "card": True, "id_document": True, "app_code": True}]
            ),
            id="int-for-bool",
        ),
        pytest.param(delta_dict(records=[{"kind": "badge", "id": 1}]), id="unknown-record-kind"),
        pytest.param(delta_dict(records=[person_dict(pseudonym="p-0123456789ABCDEF")]), id="pseudonym-uppercase"),
        pytest.param(delta_dict(records=[person_dict(pseudonym="0123456789abcdef")]), id="pseudonym-no-prefix"),
        pytest.param(delta_dict(records=[person_dict(pseudonym="p-0123456789abcde")]), id="pseudonym-short"),
        pytest.param(delta_dict(records=[person_dict(pseudonym=PSEUDONYM + "\n")]), id="pseudonym-newline"),
        pytest.param(delta_dict(records=[person_dict(groups=["1"])]), id="group-as-string"),
        pytest.param(
            delta_dict(records=[person_dict(credentials=[{"id": 1, "kind": "card", "hash": HASH[:-1]}])]),
            id="hash-short",
        ),
        pytest.param(
            delta_dict(records=[person_dict(credentials=[{"id": 1, "kind": "card", "hash": HASH.upper()}])]),
            id="hash-uppercase",
        ),
        pytest.param(
            delta_dict(records=[person_dict(templates=[{"id": 2, "model": "m1", "sealed": "AAAA"}])]),
            id="sealed-too-short",
        ),
        pytest.param(
            delta_dict(
                records=[
                    person_dict(templates=[{"id": 2, "model": "m1", "sealed": base64.b64encode(bytes(8193)).decode()}])
                ]
            ),
            id="sealed-too-long",
        ),
        pytest.param(
            delta_dict(records=[person_dict(templates=[{"id": 2, "model": "m1", "sealed": "not base64!"}])]),
            id="sealed-not-base64",
        ),
        pytest.param(
            delta_dict(records=[person_dict(templates=[{"id": 2, "model": "", "sealed": "A" * 40}])]),
            id="empty-model",
        ),
    ],
)
def test_invalid_delta_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        decode(Delta, payload(data))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(snapshot_dict(part=0), id="part-zero"),
        pytest.param(snapshot_dict(part=1_000_001), id="part-too-high"),
        pytest.param(snapshot_dict(part="1"), id="part-as-string"),
        pytest.param(snapshot_dict(parts=2), id="parts-no-longer-a-field"),
        pytest.param(snapshot_dict(last=1), id="last-as-int"),
        pytest.param(snapshot_dict(last="true"), id="last-as-string"),
        pytest.param(snapshot_dict(roster_hash=None), id="last-without-hash"),
        pytest.param(snapshot_dict(last=False), id="hash-before-last"),
        pytest.param({k: v for k, v in snapshot_dict().items() if k != "last"}, id="last-missing"),
        pytest.param(snapshot_dict(seq="9"), id="seq-as-string"),
        pytest.param(snapshot_dict(seq=False), id="seq-as-bool"),
        pytest.param(snapshot_dict(snapshot_id=SNAPSHOT_ID[:-1]), id="short-snapshot-id"),
        pytest.param(snapshot_dict(snapshot_id=SNAPSHOT_ID.upper()), id="uppercase-snapshot-id"),
        pytest.param(snapshot_dict(roster_hash="g" * 64), id="bad-hash"),
        pytest.param(snapshot_dict(roster_hash=HASH + "0"), id="long-hash"),
        pytest.param(snapshot_dict(removals=[]), id="snapshots-have-no-removals"),
        pytest.param(snapshot_dict(type="delta"), id="wrong-type"),
    ],
)
def test_invalid_snapshot_part_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        decode(SnapshotPart, payload(data))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(batch_dict(events=[]), id="empty"),
        pytest.param(batch_dict(events=[event_dict()] * (MAX_EVENTS_PER_BATCH + 1)), id="over-limit"),
        pytest.param(batch_dict(events=[event_dict(uid=UID.upper())]), id="uid-uppercase"),
        pytest.param(batch_dict(events=[event_dict(uid=UID.replace("-", ""))]), id="uid-no-dashes"),
        pytest.param(batch_dict(events=[event_dict(uid="{" + UID + "}")]), id="uid-braces"),
        pytest.param(batch_dict(events=[event_dict(door="1")]), id="door-as-string"),
        pytest.param(batch_dict(events=[event_dict(door=True)]), id="door-as-bool"),
        pytest.param(batch_dict(events=[event_dict(method="photo")]), id="unknown-method"),
        pytest.param(batch_dict(events=[event_dict(decision="maybe")]), id="unknown-decision"),
        pytest.param(batch_dict(events=[event_dict(reason="Not OK")]), id="free-text-reason"),
        pytest.param(batch_dict(events=[event_dict(person="Li Wei")]), id="name-instead-of-pseudonym"),
        pytest.param(batch_dict(events=[event_dict(at="2026-11-23T08:00:00")]), id="naive-time"),
        pytest.param(batch_dict(events=[event_dict(image="AAAA")]), id="image-field"),
        pytest.param(batch_dict(terminal=""), id="empty-terminal"),
    ],
)
def test_invalid_event_batch_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        decode(EventBatch, payload(data))


def test_event_batch_at_the_limit_is_accepted() -> None:
    events = [event_dict(uid=f"{i:08x}-0000-4000-8000-000000000000") for i in range(MAX_EVENTS_PER_BATCH)]
    assert len(decode(EventBatch, payload(batch_dict(events=events))).events) == MAX_EVENTS_PER_BATCH


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Ack, {"terminal": "t-1", "applied_seq": "3"}),
        (Ack, {"terminal": "t-1", "applied_seq": 3, "erased": [{"kind": "credential", "ref": "1"}]}),
        (Ack, {"terminal": "t-1", "applied_seq": 3, "erased": [{"kind": "template", "ref": ""}]}),
        (Receipt, {"terminal": "t-1", "events": ["nope"]}),
        (Receipt, {"terminal": "t-1", "erasures": [{"kind": "person"}]}),
        (Birth, {"terminal": "t-1", "applied_seq": True, "roster_hash": HASH, "software": "x"}),
    ],
)
def test_invalid_ack_receipt_birth_are_rejected(model: type[WireModel], data: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        decode(model, payload(data))


def test_oversize_payload_is_refused_before_parsing() -> None:
    # Valid JSON padded with whitespace: only the size can be wrong with it.
    raw = payload(delta_dict())
    padded = raw + b" " * (MAX_MESSAGE_BYTES - len(raw) + 1)
    with pytest.raises(MessageError, match="exceeds"):
        decode(Delta, padded)
    assert decode(Delta, raw + b" " * (MAX_MESSAGE_BYTES - len(raw))).seq == 5


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,2", b"\xff\xfe", b"null"])
def test_garbage_is_a_message_error(raw: bytes) -> None:
    with pytest.raises(MessageError):
        decode(Delta, raw)


def test_models_are_frozen() -> None:
    delta = decode(Delta, payload(delta_dict()))
    with pytest.raises(ValueError, match="frozen"):
        delta.seq = 99  # type: ignore[misc]


# ---- round trips -----------------------------------------------------------------------------------------------


def test_delta_round_trip_with_every_record_kind() -> None:
    records = (
        SiteRecord(timezone="Asia/Shanghai", face_enabled=True, holidays=(date(2027, 1, 1),)),
        DoorRecord(id=1, face=True, card=True, id_document=True, app_code=True),
        GroupRecord(id=2, doors=(1,), windows=((0, 360, 1380),), open_on_holidays=False),
        person(),
        PassRecord(
            id=7,
            doors=(1,),
            valid_from=datetime(2026, 11, 23, tzinfo=UTC),
            valid_until=datetime(2026, 11, 24, tzinfo=UTC),
            uses_allowed=2,
            uses_count=0,
            code_hash=HASH,
        ),
    )
    delta = Delta(
        site="maple",
        terminal="t-1",
        base_seq=3,
        seq=8,
        part=2,
        parts=3,
        removals=(Removal(kind="person", key="p-" + "f" * 16), Removal(kind="group", key="9")),
        records=records,
    )
    decoded = decode(Delta, encode(delta))
    assert decoded == delta
    assert [type(r) for r in decoded.records] == [type(r) for r in records]
    assert isinstance(decoded.records[3], PersonRecord)
    assert decoded.records[3].templates[0].sealed == SEALED


@pytest.mark.parametrize(
    "message",
    [
        SnapshotPart(
            site="maple",
            terminal="t-1",
            part=1,
            last=True,
            snapshot_id=SNAPSHOT_ID,
            seq=0,
            roster_hash=HASH,
            records=(),
        ),
        Ack(
            terminal="t-1",
            applied_seq=12,
            erased=(Erased(kind="person", ref=PSEUDONYM), Erased(kind="template", ref="3")),
        ),
        Receipt(terminal="t-1", events=(UID,), rejected=(UID,), erasures=(Erased(kind="template", ref="3"),)),
        EventBatch(
            terminal="t-1",
            events=(
                EventRecord.model_validate_json(payload(event_dict())),
                EventRecord.model_validate_json(payload(event_dict(person=None, pass_id=4, method="visitor_code"))),
            ),
        ),
        Birth(terminal="t-1", applied_seq=3, roster_hash=EMPTY_ROSTER_HASH, software="t 1"),
    ],
    ids=["snapshot", "ack", "receipt", "events", "birth"],
)
def test_round_trip(message: WireModel) -> None:
    assert decode(type(message), encode(message)) == message


def test_bytes_travel_as_base64() -> None:
    raw = encode(TemplateRecord(id=3, model="m1", sealed=SEALED))
    text = json.loads(raw)["sealed"]
    assert isinstance(text, str)
    assert base64.urlsafe_b64decode(text) == SEALED
    # Standard base64 (as another implementation might send) is accepted too.
    standard = payload({"id": 3, "model": "m1", "sealed": base64.b64encode(SEALED).decode()})
    assert decode(TemplateRecord, standard).sealed == SEALED


def test_encode_is_compact() -> None:
    raw = encode(decode(Delta, payload(delta_dict())))
    assert b" " not in raw and b"\n" not in raw


# ---- signing ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


TOPIC = terminal_topic("maple", "t-1", Channel.SYNC)
BODY = payload(delta_dict())


def test_signature_round_trip(server_key: Ed25519PrivateKey) -> None:
    signed = sign(server_key, TOPIC, BODY)
    assert signed.startswith(MAGIC) and len(signed) == len(MAGIC) + 64 + len(BODY)
    assert verify(server_key.public_key(), TOPIC, signed) == BODY


def test_empty_body_signs_and_verifies(server_key: Ed25519PrivateKey) -> None:
    assert verify(server_key.public_key(), TOPIC, sign(server_key, TOPIC, b"")) == b""


@pytest.mark.parametrize("index", [0, 4, 40, 67, 68, -1])
def test_any_flipped_byte_is_refused(server_key: Ed25519PrivateKey, index: int) -> None:
    signed = bytearray(sign(server_key, TOPIC, BODY))
    signed[index] ^= 0x01
    with pytest.raises(SignatureError):
        verify(server_key.public_key(), TOPIC, bytes(signed))


def test_tampered_body_is_refused(server_key: Ed25519PrivateKey) -> None:
    signed = sign(server_key, TOPIC, BODY)
    forged = signed.replace(b'"seq": 5', b'"seq": 6')
    assert forged != signed
    with pytest.raises(SignatureError):
        verify(server_key.public_key(), TOPIC, forged)


def test_appended_bytes_are_refused(server_key: Ed25519PrivateKey) -> None:
    with pytest.raises(SignatureError):
        verify(server_key.public_key(), TOPIC, sign(server_key, TOPIC, BODY) + b" ")


@pytest.mark.parametrize(
    "other_topic",
    [
        terminal_topic("maple", "t-2", Channel.SYNC),
        terminal_topic("oak", "t-1", Channel.SYNC),
        terminal_topic("maple", "t-1", Channel.RECEIPT),
        terminal_topic("maple", "t-1", Channel.COMMAND),
        TOPIC + "/",
    ],
)
def test_signature_is_bound_to_the_topic(server_key: Ed25519PrivateKey, other_topic: str) -> None:
    signed = sign(server_key, TOPIC, BODY)
    with pytest.raises(SignatureError):
        verify(server_key.public_key(), other_topic, signed)


def test_wrong_key_is_refused(server_key: Ed25519PrivateKey) -> None:
    signed = sign(Ed25519PrivateKey.generate(), TOPIC, BODY)
    with pytest.raises(SignatureError, match="key"):
        verify(server_key.public_key(), TOPIC, signed)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(BODY, id="plain-json"),
        pytest.param(MAGIC, id="magic-only"),
        pytest.param(MAGIC + bytes(63), id="short-signature"),
        pytest.param(b"GHS2" + bytes(64) + BODY, id="wrong-magic"),
        pytest.param(MAGIC + bytes(64) + BODY, id="zero-signature"),
    ],
)
def test_unsigned_or_short_payload_is_refused(server_key: Ed25519PrivateKey, raw: bytes) -> None:
    with pytest.raises(SignatureError):
        verify(server_key.public_key(), TOPIC, raw)


# ---- fingerprints and roster hash -------------------------------------------------------------------------------


def test_fingerprint_ignores_sealed_bytes() -> None:
    a = person()
    b = person(
        credentials=(
            CredentialRecord(id=1, kind="card", hash=HASH),
            CredentialRecord(id=2, kind="app_code", sealed=SEALED),
        ),
        templates=(TemplateRecord(id=3, model="m1", sealed=bytes(reversed(SEALED))),),
    )
    assert a != b
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(person(pseudonym="p-0123456789abcdee"), id="pseudonym"),
        pytest.param(person(groups=(1,)), id="groups"),
        pytest.param(person(templates=(TemplateRecord(id=4, model="m1", sealed=SEALED),)), id="template-id"),
        pytest.param(person(templates=(TemplateRecord(id=3, model="m2", sealed=SEALED),)), id="template-model"),
        pytest.param(person(templates=()), id="no-template"),
        pytest.param(
            person(
                credentials=(
                    CredentialRecord(id=1, kind="card", hash="cd" * 32),
                    CredentialRecord(id=2, kind="app_code"),
                )
            ),
            id="credential-hash",
        ),
        pytest.param(
            person(
                credentials=(CredentialRecord(id=5, kind="card", hash=HASH), CredentialRecord(id=2, kind="app_code"))
            ),
            id="credential-id",
        ),
        pytest.param(
            person(
                credentials=(
                    CredentialRecord(id=1, kind="id_document", hash=HASH),
                    CredentialRecord(id=2, kind="app_code"),
                )
            ),
            id="credential-kind",
        ),
        pytest.param(person(credentials=(CredentialRecord(id=1, kind="card", hash=HASH),)), id="credential-dropped"),
    ],
)
def test_fingerprint_covers_ids_models_and_hashes(changed: PersonRecord) -> None:
    assert fingerprint(changed) != fingerprint(person())


def test_fingerprint_of_other_kinds_covers_their_fields() -> None:
    door = DoorRecord(id=1, face=False, card=True, id_document=True, app_code=True)
    assert fingerprint(door) == fingerprint(DoorRecord(id=1, face=False, card=True, id_document=True, app_code=True))
    assert fingerprint(door) != fingerprint(door.model_copy(update={"face": True}))
    assert fingerprint(door) != fingerprint(door.model_copy(update={"id": 2}))
    group = GroupRecord(id=1, doors=(1,), windows=((0, 0, 1440),), open_on_holidays=True)
    assert fingerprint(group) != fingerprint(group.model_copy(update={"windows": ((0, 0, 1439),)}))
    assert fingerprint(group) != fingerprint(group.model_copy(update={"open_on_holidays": False}))


def test_fingerprint_of_site_covers_holidays() -> None:
    site = SiteRecord(timezone="Asia/Shanghai", face_enabled=False, holidays=())
    assert fingerprint(site) != fingerprint(site.model_copy(update={"holidays": (date(2027, 1, 1),)}))
    assert fingerprint(site) != fingerprint(site.model_copy(update={"face_enabled": True}))


def test_roster_hash_is_independent_of_order() -> None:
    entries = [("door", "1", "a" * 64), ("person", PSEUDONYM, "b" * 64), ("group", "2", "c" * 64)]
    expected = roster_hash(entries)
    assert roster_hash(reversed(entries)) == expected
    assert roster_hash(iter(sorted(entries))) == expected
    assert len(expected) == 64 and int(expected, 16) >= 0


@pytest.mark.parametrize(
    "entries",
    [
        [("door", "1", "a" * 64), ("person", PSEUDONYM, "b" * 64)],
        [("door", "1", "a" * 64), ("person", PSEUDONYM, "b" * 64), ("group", "2", "d" * 64)],
        [("door", "2", "a" * 64), ("person", PSEUDONYM, "b" * 64), ("group", "2", "c" * 64)],
        [("pass", "1", "a" * 64), ("person", PSEUDONYM, "b" * 64), ("group", "2", "c" * 64)],
    ],
)
def test_roster_hash_changes_with_any_entry(entries: list[tuple[str, str, str]]) -> None:
    base = [("door", "1", "a" * 64), ("person", PSEUDONYM, "b" * 64), ("group", "2", "c" * 64)]
    assert roster_hash(entries) != roster_hash(base)


def test_empty_roster_hash() -> None:
    assert EMPTY_ROSTER_HASH == roster_hash([]) == roster_hash(iter(()))
    assert EMPTY_ROSTER_HASH == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of b""
    assert roster_hash([("site", "site", "a" * 64)]) != EMPTY_ROSTER_HASH


# ---- in sync ---------------------------------------------------------------------------------------------------

NONCE = "0123456789abcdef" * 2


def in_sync_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"v": 1, "type": "in_sync", "site": "maple", "terminal": "t-1", "seq": 9, "nonce": NONCE}
    data.update(overrides)
    return data


def test_in_sync_decodes_and_round_trips() -> None:
    message = decode(InSync, payload(in_sync_dict()))
    assert (message.seq, message.nonce) == (9, NONCE)
    assert decode(InSync, encode(message)) == message


@pytest.mark.parametrize(
    "data",
    [
        in_sync_dict(nonce=NONCE.upper()),
        in_sync_dict(nonce=NONCE[:-1]),
        in_sync_dict(nonce=NONCE + "0"),
        in_sync_dict(nonce=None),
        in_sync_dict(seq=-1),
        in_sync_dict(seq="9"),
        in_sync_dict(type="delta"),
        in_sync_dict(v=2),
        in_sync_dict(terminal=""),
        in_sync_dict(extra=1),
        {k: v for k, v in in_sync_dict().items() if k != "nonce"},
        {k: v for k, v in in_sync_dict().items() if k != "site"},
    ],
)
def test_invalid_in_sync_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        decode(InSync, payload(data))


def test_birth_with_a_nonce_round_trips_and_without_one_encodes_as_before() -> None:
    birth = Birth(terminal="t-1", applied_seq=3, roster_hash=EMPTY_ROSTER_HASH, software="t 1", nonce=NONCE)
    assert decode(Birth, encode(birth)) == birth
    plain = Birth(terminal="t-1", applied_seq=3, roster_hash=EMPTY_ROSTER_HASH, software="t 1")
    assert "nonce" not in json.loads(encode(plain))
