"""Ed25519 signatures on server-to-terminal messages, bound to the topic they were sent on.

Wire form: b"GHS1" + 64-byte signature + JSON body. The signature covers the topic as well as the body,
so a message signed for one terminal cannot be replayed onto another terminal's topic.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAGIC = b"GHS1"
_SIG = 64


class SignatureError(ValueError):
    """A message is unsigned, malformed or not signed by the pinned server key."""


def _signed_bytes(topic: str, body: bytes) -> bytes:
    return topic.encode() + b"\n" + body


def sign(key: Ed25519PrivateKey, topic: str, body: bytes) -> bytes:
    """Wrap `body` for `topic` with the server's signature."""
    return MAGIC + key.sign(_signed_bytes(topic, body)) + body


def verify(key: Ed25519PublicKey, topic: str, payload: bytes) -> bytes:
    """Return the body of a signed message, or raise SignatureError."""
    if len(payload) < len(MAGIC) + _SIG or not payload.startswith(MAGIC):
        raise SignatureError("message is not signed")
    signature = payload[len(MAGIC) : len(MAGIC) + _SIG]
    body = payload[len(MAGIC) + _SIG :]
    try:
        key.verify(signature, _signed_bytes(topic, body))
    except InvalidSignature:
        raise SignatureError("signature does not match the server's key") from None
    return body
