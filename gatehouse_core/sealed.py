"""Authenticated encryption of small secrets at rest (face templates, app-code seeds) with AES-256-GCM.

The associated data binds a ciphertext to its owner and purpose, so a template copied onto another
person's row, or a seed into a template column, fails to decrypt instead of silently matching.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value was tampered with, belongs elsewhere, or the key is wrong."""


def seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    """Encrypt `plaintext`; `context` (e.g. 'template:person=42:model=buffalo_s') is authenticated."""
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def unseal(key: bytes, sealed: bytes, context: str) -> bytes:
    """Decrypt a value made by `seal` under the same key and context."""
    if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
        raise SealError("not a sealed value of a known version")
    nonce = sealed[1 : 1 + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + _NONCE_BYTES :], context.encode())
    except InvalidTag:
        raise SealError("sealed value does not authenticate under this key and context") from None
