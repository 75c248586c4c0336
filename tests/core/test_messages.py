"""gatehouse_core.wire.messages: Birth encoding and strict decoding at the edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_core.wire.messages import (
    MAX_DOORS_PER_TERMINAL,
    MAX_MESSAGE_BYTES,
    WIRE_VERSION,
    Birth,
    DoorState,
    DoorStates,
    DoorStatus,
    MessageError,
    decode,
    encode,
)

ROSTER_HASH = "0123456789abcdef" * 4


def birth_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 1,
        "type": "birth",
        "terminal": "door-1",
        "applied_seq": 42,
        "roster_hash": ROSTER_HASH,
        "software": "gatehouse-terminal 0.1.0",
        "face_models": ["buffalo_s"],
    }
    data.update(overrides)
    return data


def payload(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_round_trip() -> None:
    birth = Birth(terminal="door-1", applied_seq=7, roster_hash=ROSTER_HASH, software="t 1.0", face_models=("a", "b"))
    decoded = decode(Birth, encode(birth))
    assert decoded == birth
    assert decoded.face_models == ("a", "b")


def test_encode_is_compact_json_with_version_and_type() -> None:
    raw = encode(Birth(terminal="door-1", applied_seq=0, roster_hash=ROSTER_HASH, software="x"))
    assert b" " not in raw
    assert json.loads(raw) == {
        "v": WIRE_VERSION,
        "type": "birth",
        "terminal": "door-1",
        "applied_seq": 0,
        "roster_hash": ROSTER_HASH,
        "software": "x",
        "face_models": [],
    }


def test_decode_fills_defaults() -> None:
    data = birth_dict()
    del data["v"], data["type"], data["face_models"]
    birth = decode(Birth, payload(data))
    assert (birth.v, birth.type, birth.face_models) == (1, "birth", ())
    assert birth.applied_seq == 42


@pytest.mark.parametrize(
    "data",
    [
        birth_dict(extra="field"),
        birth_dict(signature="abc"),
        birth_dict(v=2),
        birth_dict(v=0),
        birth_dict(type="ack"),
        birth_dict(roster_hash=ROSTER_HASH.upper()),
        birth_dict(roster_hash=ROSTER_HASH[:-1]),
        birth_dict(roster_hash=ROSTER_HASH + "0"),
        birth_dict(roster_hash=ROSTER_HASH + "\n"),
        birth_dict(roster_hash="g" * 64),
        birth_dict(roster_hash=""),
        birth_dict(terminal=""),
        birth_dict(terminal="t" * 65),
        birth_dict(applied_seq=-1),
        birth_dict(applied_seq="many"),
        birth_dict(software="s" * 65),
        birth_dict(face_models=["m" * 65]),
        {k: v for k, v in birth_dict().items() if k != "terminal"},
        {k: v for k, v in birth_dict().items() if k != "roster_hash"},
        [],
        None,
        "birth",
    ],
)
def test_invalid_births_raise_message_error(data: Any) -> None:
    with pytest.raises(MessageError, match="invalid Birth"):
        decode(Birth, payload(data))


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"{'v': 1}", b"\xff\xfe\xfa", b"\x80abc"])
def test_non_json_raises_message_error(raw: bytes) -> None:
    with pytest.raises(MessageError, match="not JSON"):
        decode(Birth, raw)


def test_payload_at_the_size_limit_is_accepted() -> None:
    raw = payload(birth_dict())
    padded = raw + b" " * (MAX_MESSAGE_BYTES - len(raw))
    assert len(padded) == MAX_MESSAGE_BYTES
    assert decode(Birth, padded).terminal == "door-1"


def test_oversize_payload_rejected_before_parsing() -> None:
    raw = payload(birth_dict())
    padded = raw + b" " * (MAX_MESSAGE_BYTES + 1 - len(raw))
    with pytest.raises(MessageError, match="exceeds"):
        decode(Birth, padded)


def test_deeply_nested_json_raises_message_error() -> None:
    with pytest.raises(MessageError):
        decode(Birth, b"[" * 100_000)


def test_message_error_is_a_value_error() -> None:
    assert issubclass(MessageError, ValueError)


def test_messages_are_frozen() -> None:
    birth = decode(Birth, payload(birth_dict()))
    with pytest.raises(ValidationError):
        birth.applied_seq = 43  # type: ignore[misc]


def test_constructing_with_unknown_field_fails() -> None:
    with pytest.raises(ValidationError):
        Birth(**birth_dict(extra=1))


NONCE = "0123456789abcdef" * 2


def test_birth_nonce_is_optional_and_checked() -> None:
    assert decode(Birth, payload(birth_dict())).nonce is None
    assert decode(Birth, payload(birth_dict(nonce=NONCE))).nonce == NONCE
    assert decode(Birth, payload(birth_dict(nonce=None))).nonce is None


@pytest.mark.parametrize("nonce", [NONCE.upper(), NONCE[:-1], NONCE + "a", "", "g" * 32, 12345, NONCE + "\n"])
def test_birth_with_a_malformed_nonce_is_rejected(nonce: Any) -> None:
    with pytest.raises(MessageError, match="invalid Birth"):
        decode(Birth, payload(birth_dict(nonce=nonce)))


# ---- door states (retained, terminal -> all) -------------------------------------------------------------------


def test_door_states_round_trip_and_refuse_what_is_not_a_door_state() -> None:
    since = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    states = DoorStates(
        terminal="t-1",
        doors=(
            DoorStatus(door=1, state=DoorState.FORCED_OPEN, supervised=True, since=since),
            DoorStatus(door=2, state=DoorState.UNLOCKED, supervised=False, since=since),
        ),
        at=since,
    )
    body = encode(states)
    assert decode(DoorStates, body) == states
    assert b'"type":"doors"' in body and b'"state":"forced_open"' in body
    for bad in (
        body.replace(b"forced_open", b"ajar"),
        body.replace(b'"door":1', b'"door":0'),
        body.replace(b'"supervised":true', b'"supervised":"yes"'),
        body.replace(b'"type":"doors"', b'"type":"doors","extra":1'),
        body.replace(b"+00:00", b"").replace(b"Z", b""),
    ):
        with pytest.raises(MessageError):
            decode(DoorStates, bad)
    assert {s.value for s in DoorState} == {"locked", "unlocked", "open", "held_open", "forced_open"}


def test_door_states_of_the_most_doors_fit_in_one_message() -> None:
    since = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    doors = tuple(
        DoorStatus(door=door, state=DoorState.HELD_OPEN, supervised=True, since=since)
        for door in range(1, MAX_DOORS_PER_TERMINAL + 1)
    )
    body = encode(DoorStates(terminal="t" * 64, doors=doors, at=since))
    assert len(body) < MAX_MESSAGE_BYTES
    with pytest.raises(ValidationError):
        DoorStates(terminal="t-1", doors=(*doors, doors[0]), at=since)
