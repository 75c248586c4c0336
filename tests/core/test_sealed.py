"""gatehouse_core.sealed: AES-256-GCM sealing bound to a context."""

from __future__ import annotations

import pytest

from gatehouse_core.sealed import SealError, seal, unseal

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CONTEXT = "template:person=42:model=buffalo_s"
PLAINTEXT = b"\x00\x01face-template-bytes\xff" * 8


def test_round_trip() -> None:
    assert unseal(KEY, seal(KEY, PLAINTEXT, CONTEXT), CONTEXT) == PLAINTEXT


@pytest.mark.parametrize("plaintext", [b"", b"x", bytes(range(256)) * 64])
def test_round_trip_sizes(plaintext: bytes) -> None:
    sealed = seal(KEY, plaintext, CONTEXT)
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    assert unseal(KEY, sealed, CONTEXT) == plaintext


def test_layout_starts_with_version_and_hides_plaintext() -> None:
    sealed = seal(KEY, PLAINTEXT, CONTEXT)
    assert sealed[:1] == b"\x01"
    assert b"face-template-bytes" not in sealed


def test_two_seals_of_same_plaintext_differ() -> None:
    first, second = seal(KEY, PLAINTEXT, CONTEXT), seal(KEY, PLAINTEXT, CONTEXT)
    assert first != second
    assert first[1:13] != second[1:13]  # fresh nonce each time
    assert unseal(KEY, first, CONTEXT) == unseal(KEY, second, CONTEXT) == PLAINTEXT


@pytest.mark.parametrize(
    "context",
    ["template:person=43:model=buffalo_s", "seed:person=42", "", CONTEXT + " ", CONTEXT.upper()],
)
def test_wrong_context_fails(context: str) -> None:
    with pytest.raises(SealError, match="does not authenticate"):
        unseal(KEY, seal(KEY, PLAINTEXT, CONTEXT), context)


def test_wrong_key_fails() -> None:
    with pytest.raises(SealError, match="does not authenticate"):
        unseal(OTHER_KEY, seal(KEY, PLAINTEXT, CONTEXT), CONTEXT)


def test_every_tampered_byte_is_detected() -> None:
    sealed = seal(KEY, b"short secret", CONTEXT)
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(SealError):
            unseal(KEY, bytes(tampered), CONTEXT)


@pytest.mark.parametrize("keep", [0, 1, 13, 28, -1])
def test_truncated_values_fail(keep: int) -> None:
    sealed = seal(KEY, b"", CONTEXT)  # exactly 29 bytes: version + nonce + tag
    with pytest.raises(SealError):
        unseal(KEY, sealed[:keep], CONTEXT)


def test_truncated_short_form_is_reported_as_unknown() -> None:
    with pytest.raises(SealError, match="known version"):
        unseal(KEY, seal(KEY, PLAINTEXT, CONTEXT)[:28], CONTEXT)


@pytest.mark.parametrize("version", [b"\x00", b"\x02", b"\xff"])
def test_wrong_version_fails(version: bytes) -> None:
    sealed = seal(KEY, PLAINTEXT, CONTEXT)
    with pytest.raises(SealError, match="known version"):
        unseal(KEY, version + sealed[1:], CONTEXT)


def test_appended_bytes_fail() -> None:
    with pytest.raises(SealError):
        unseal(KEY, seal(KEY, PLAINTEXT, CONTEXT) + b"\x00", CONTEXT)
