"""Broker passwords for terminals, hashed in mosquitto's own password-file format.

mosquitto 2 reads `$7$<iterations>$<salt b64>$<pbkdf2-sha512 b64>` lines; storing that format lets
`gatehouse` write the broker's password file straight from the database without ever keeping the
plain password. The password itself is random and shown once, in the terminal's provisioning file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 1000
# A stored hash can never make verification arbitrarily slow.
MAX_ITERATIONS = 1_000_000
_SALT_BYTES = 12


def generate_password() -> str:
    """A random broker password (about 190 bits)."""
    return secrets.token_urlsafe(32)


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Hash a password as mosquitto_passwd does (PBKDF2-HMAC-SHA512, format $7$)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """Check a password against a $7$ hash."""
    try:
        empty, version, iterations, salt_b64, digest_b64 = encoded.split("$")
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        rounds = int(iterations)
    except ValueError:
        return False
    if empty or version != "7" or not 1 <= rounds <= MAX_ITERATIONS or not salt or len(expected) != 64:
        return False
    actual = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds)
    return hmac.compare_digest(actual, expected)
