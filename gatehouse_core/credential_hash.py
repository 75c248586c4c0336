"""Keyed hashes of card UIDs and ID-document numbers, identical on server and terminals.

A credential is never stored or sent in clear: both sides hash the normalised value with HMAC-SHA256
under a per-site key derived from the installation secret, so hashes from two sites do not correlate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class CredentialKind(StrEnum):
    """Ways a person identifies at a door besides face."""

    CARD = "card"
    ID_DOCUMENT = "id_document"
    APP_CODE = "app_code"


class CredentialFormatError(ValueError):
    """A typed or read credential value has the wrong shape."""


_HEX = re.compile(r"^[0-9A-F]+$")
_ID = re.compile(r"^[0-9A-Z]{5,32}$")


def normalize_card_uid(uid: str) -> str:
    """Canonical card UID: upper-case hex without separators; 4, 7 or 10 bytes as ISO 14443 defines."""
    cleaned = re.sub(r"[\s:\-]", "", uid).upper()
    if not cleaned or not _HEX.fullmatch(cleaned):
        raise CredentialFormatError("a card UID is hexadecimal, e.g. 04A2B3C4D5E6F7")
    if len(cleaned) not in (8, 14, 20):
        raise CredentialFormatError("a card UID has 4, 7 or 10 bytes (8, 14 or 20 hex digits)")
    return cleaned


def normalize_id_number(number: str) -> str:
    """Canonical ID-document number: letters and digits only, upper case, 5 to 32 characters."""
    cleaned = re.sub(r"[\s\-]", "", number)
    # ASCII only: upper-casing would otherwise fold e.g. 'ß' into 'SS' and make two numbers hash alike.
    cleaned = cleaned.upper() if cleaned.isascii() else ""
    if not _ID.fullmatch(cleaned):
        raise CredentialFormatError("an ID-document number has 5 to 32 letters and digits")
    return cleaned


def site_hashing_key(installation_secret: bytes, site_code: str) -> bytes:
    """Derive the per-site hashing key that server and the site's terminals share."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"gatehouse/credential-hash/v1/" + site_code.encode("utf-8"),
    ).derive(installation_secret)


def credential_hash(site_key: bytes, kind: CredentialKind, normalized: str) -> str:
    """HMAC-SHA256 of an already-normalised value, hex; the kind separates card and ID namespaces."""
    message = f"{kind.value}:{normalized}".encode()
    return hmac.new(site_key, message, hashlib.sha256).hexdigest()


def hash_card(site_key: bytes, uid: str) -> str:
    """Normalise and hash a card UID."""
    return credential_hash(site_key, CredentialKind.CARD, normalize_card_uid(uid))


def hash_id_document(site_key: bytes, number: str) -> str:
    """Normalise and hash an ID-document number."""
    return credential_hash(site_key, CredentialKind.ID_DOCUMENT, normalize_id_number(number))


PASS_CODE_DIGITS = 6
_PASS_CODE = re.compile(rf"^[0-9]{{{PASS_CODE_DIGITS}}}$")


def normalize_pass_code(code: str) -> str:
    """A visitor's numeric pass code: exactly 6 digits (spaces ignored)."""
    cleaned = re.sub(r"\s", "", code)
    if not _PASS_CODE.fullmatch(cleaned):
        raise CredentialFormatError(f"a visitor code has {PASS_CODE_DIGITS} digits")
    return cleaned


def hash_pass_code(site_key: bytes, code: str) -> str:
    """Keyed hash of a visitor pass code, in its own namespace."""
    message = f"pass_code:{normalize_pass_code(code)}".encode()
    return hmac.new(site_key, message, hashlib.sha256).hexdigest()
