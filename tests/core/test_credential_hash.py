"""gatehouse_core.credential_hash: normalisation and keyed hashing of card UIDs and ID numbers."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gatehouse_core.credential_hash import (
    CredentialFormatError,
    CredentialKind,
    credential_hash,
    hash_card,
    hash_id_document,
    normalize_card_uid,
    normalize_id_number,
    site_hashing_key,
)

SECRET = bytes(range(32))


def hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 HKDF with an empty salt, written out with hmac so the derivation is checked independently."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


@pytest.fixture
def key() -> bytes:
    return site_hashing_key(SECRET, "north")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("04A2B3C4", "04A2B3C4"),
        ("04a2b3c4", "04A2B3C4"),
        ("04:a2:b3:c4", "04A2B3C4"),
        ("04-A2-B3-C4-D5-E6-F7", "04A2B3C4D5E6F7"),
        ("  04 a2 b3 c4 d5 e6 f7\n", "04A2B3C4D5E6F7"),
        ("04\tA2:b3-C4 d5e6f7", "04A2B3C4D5E6F7"),
        ("0102030405060708090a", "0102030405060708090A"),
    ],
)
def test_card_uid_normalisation(raw: str, expected: str) -> None:
    assert normalize_card_uid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "hexadecimal"),
        (" : - ", "hexadecimal"),
        ("04A2B3CG", "hexadecimal"),
        ("0x04A2B3C4", "hexadecimal"),
        ("04.A2.B3.C4", "hexadecimal"),
        ("04A2B3", "4, 7 or 10 bytes"),
        ("04A2B3C", "4, 7 or 10 bytes"),
        ("04A2B3C4D", "4, 7 or 10 bytes"),
        ("04A2B3C4D5", "4, 7 or 10 bytes"),
        ("04A2B3C4D5E6F708", "4, 7 or 10 bytes"),
        ("0102030405060708090A0B", "4, 7 or 10 bytes"),
    ],
)
def test_bad_card_uids_rejected(raw: str, fragment: str) -> None:
    with pytest.raises(CredentialFormatError, match=fragment):
        normalize_card_uid(raw)


def test_format_error_is_value_error() -> None:
    assert issubclass(CredentialFormatError, ValueError)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ab123", "AB123"),
        ("x-1234-567", "X1234567"),
        (" L01X00T47 ", "L01X00T47"),
        ("a" * 32, "A" * 32),
    ],
)
def test_id_number_normalisation(raw: str, expected: str) -> None:
    assert normalize_id_number(raw) == expected


@pytest.mark.parametrize("raw", ["", "1234", "AB-12", "A" * 33, "AB/12345", "AB.12345", "AB_12345", "AB:12345"])
def test_bad_id_numbers_rejected(raw: str) -> None:
    with pytest.raises(CredentialFormatError, match="5 to 32"):
        normalize_id_number(raw)


def test_site_key_matches_rfc5869_hkdf() -> None:
    assert site_hashing_key(SECRET, "north") == hkdf_sha256(SECRET, b"gatehouse/credential-hash/v1/north")
    assert len(site_hashing_key(SECRET, "north")) == 32


def test_site_keys_differ_per_site_and_per_installation() -> None:
    north = site_hashing_key(SECRET, "north")
    assert site_hashing_key(SECRET, "north") == north
    assert site_hashing_key(SECRET, "south") != north
    assert site_hashing_key(bytes(32), "north") != north


def test_same_card_hashes_differently_at_two_sites() -> None:
    north = site_hashing_key(SECRET, "north")
    south = site_hashing_key(SECRET, "south")
    assert hash_card(north, "04A2B3C4") != hash_card(south, "04A2B3C4")
    assert hash_id_document(north, "AB12345") != hash_id_document(south, "AB12345")


def test_credential_hash_is_hmac_sha256_of_kind_and_value(key: bytes) -> None:
    expected = hmac.new(key, b"card:04A2B3C4D5E6F7", hashlib.sha256).hexdigest()
    assert credential_hash(key, CredentialKind.CARD, "04A2B3C4D5E6F7") == expected
    assert hash_card(key, "04:a2:b3:c4:d5:e6:f7") == expected
    expected_id = hmac.new(key, b"id_document:AB12345", hashlib.sha256).hexdigest()
    assert hash_id_document(key, "ab-123 45") == expected_id


def test_hash_is_lowercase_hex_sha256(key: bytes) -> None:
    digest = hash_card(key, "04A2B3C4")
    assert len(digest) == 64
    assert digest == digest.lower()
    int(digest, 16)


@pytest.mark.parametrize("spelling", ["04a2b3c4", "04:A2:B3:C4", "04-a2-b3-c4", " 04 A2 B3 C4 "])
def test_every_spelling_of_a_card_hashes_alike(key: bytes, spelling: str) -> None:
    assert hash_card(key, spelling) == hash_card(key, "04A2B3C4")


def test_different_cards_hash_differently(key: bytes) -> None:
    assert hash_card(key, "04A2B3C4") != hash_card(key, "04A2B3C5")


def test_card_and_id_namespaces_are_separate(key: bytes) -> None:
    # "12345678" is both a valid 4-byte card UID and a valid ID number.
    assert hash_card(key, "12345678") != hash_id_document(key, "12345678")
    assert credential_hash(key, CredentialKind.CARD, "12345678") != credential_hash(
        key, CredentialKind.APP_CODE, "12345678"
    )


def test_hash_functions_reject_bad_input_instead_of_hashing(key: bytes) -> None:
    with pytest.raises(CredentialFormatError):
        hash_card(key, "04A2B3")
    with pytest.raises(CredentialFormatError):
        hash_id_document(key, "AB1")
