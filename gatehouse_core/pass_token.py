"""Visitor pass tokens: what a visitor's QR carries, signed by the server, checked offline by terminals.

A token states the pass id, its doors, its window and its number of uses, and is signed with the
server's Ed25519 key over the site code as well, so a token from one site means nothing at another.
A terminal that has never heard of the pass (issued while it was offline) can still admit the visitor
within those limits; revocation and uses elsewhere reach it through sync, and its own uses are kept
in its replay cache.

Text form (QR alphanumeric mode): "GHP1:" + base32 of (body + 64-byte signature), no padding.
Body: version (1 byte), pass id (u32), valid from and until (u32 Unix seconds), uses allowed (u16),
door count (u8) and door ids (u32 each); big-endian.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "GHP1:"
VERSION = 1
MAX_DOORS = 16
MAX_USES = 100
_HEAD = struct.Struct(">BIIIHB")
_SIG = 64
_DOMAIN = b"gatehouse/visitor-pass/v1\n"
# Times are u32 Unix seconds: the last moment a token can state is 2106-02-07 06:28:15 UTC.
EARLIEST_TIME = datetime.fromtimestamp(0, UTC)
LATEST_TIME = datetime.fromtimestamp(2**32 - 1, UTC)


class PassTokenError(ValueError):
    """A token that is malformed, forged, or from another site."""


@dataclass(frozen=True)
class PassClaims:
    """What the server vouches for in a visitor pass token."""

    pass_id: int
    doors: tuple[int, ...]
    valid_from: datetime
    valid_until: datetime
    uses_allowed: int

    def __post_init__(self) -> None:
        if not 1 <= self.pass_id <= 2**31 - 1:
            raise PassTokenError("pass id out of range")
        if not 1 <= len(self.doors) <= MAX_DOORS or any(not 1 <= d <= 2**31 - 1 for d in self.doors):
            raise PassTokenError(f"a pass names 1 to {MAX_DOORS} doors")
        if not 1 <= self.uses_allowed <= MAX_USES:
            raise PassTokenError(f"a pass allows 1 to {MAX_USES} uses")
        if self.valid_from.tzinfo is None or self.valid_until.tzinfo is None:
            raise PassTokenError("pass times must be aware")
        if not self.valid_from < self.valid_until:
            raise PassTokenError("a pass must start before it ends")

    def body(self) -> bytes:
        """The signed bytes (without the domain and site)."""
        head = _HEAD.pack(
            VERSION,
            self.pass_id,
            _seconds(self.valid_from),
            _seconds(self.valid_until),
            self.uses_allowed,
            len(self.doors),
        )
        return head + b"".join(struct.pack(">I", d) for d in self.doors)


def _seconds(moment: datetime) -> int:
    value = int(moment.timestamp())
    if not 0 <= value < 2**32:
        raise PassTokenError("pass time out of range")
    return value


def _message(site: str, body: bytes) -> bytes:
    return _DOMAIN + site.encode() + b"\n" + body


def sign_pass(key: Ed25519PrivateKey, site: str, claims: PassClaims) -> str:
    """The QR text for a pass."""
    body = claims.body()
    token = body + key.sign(_message(site, body))
    return PREFIX + base64.b32encode(token).decode("ascii").rstrip("=")


def looks_like_token(text: str) -> bool:
    """Whether QR text is meant as a visitor pass (then it is a pass or nothing)."""
    return text.startswith(PREFIX)


def verify_pass(key: Ed25519PublicKey, site: str, text: str) -> PassClaims:
    """Check a token's signature for this site and return its claims, or raise PassTokenError."""
    if not looks_like_token(text) or len(text) > 400:
        raise PassTokenError("not a Gatehouse visitor pass")
    encoded = text[len(PREFIX) :]
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (binascii.Error, ValueError):
        raise PassTokenError("visitor pass is garbled") from None
    if len(raw) < _HEAD.size + 4 + _SIG:
        raise PassTokenError("visitor pass is too short")
    body, signature = raw[:-_SIG], raw[-_SIG:]
    version, pass_id, start, end, uses, count = _HEAD.unpack_from(body)
    if version != VERSION:
        raise PassTokenError(f"visitor pass version {version} is not supported")
    if len(body) != _HEAD.size + 4 * count:
        raise PassTokenError("visitor pass is garbled")
    try:
        key.verify(signature, _message(site, body))
    except InvalidSignature:
        raise PassTokenError("visitor pass is not signed by this site's server") from None
    doors = tuple(struct.unpack_from(f">{count}I", body, _HEAD.size))
    return PassClaims(
        pass_id=pass_id,
        doors=doors,
        valid_from=datetime.fromtimestamp(start, UTC),
        valid_until=datetime.fromtimestamp(end, UTC),
        uses_allowed=uses,
    )
