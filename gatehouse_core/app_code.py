"""Residents' rotating app codes: RFC 6238 time-based one-time codes, shared by server, app and terminals.

The app shows the current code as 8 digits (to key in) and as a QR whose text names the credential,
so a camera finds the seed at once instead of searching. Codes come from pyotp (HMAC-SHA256, 30-second
steps); a terminal accepts the previous, current and next step to allow for clock drift and the time it
takes to type, and never the same (credential, step) twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

import pyotp

DIGITS = 8
STEP_SECONDS = 30
# Steps either side of the current one that still count (clock drift, typing time).
VALID_WINDOW = 1
QR_PREFIX = "GHA1"
ISSUER = "Gatehouse"

_CODE = re.compile(rf"^[0-9]{{{DIGITS}}}$")
_QR = re.compile(rf"^{QR_PREFIX}:([1-9][0-9]{{0,9}}):([0-9]{{{DIGITS}}})$")


class AppCodeFormatError(ValueError):
    """Text that is not an app code or an app-code QR."""


def totp(seed: bytes) -> pyotp.TOTP:
    """The generator for one seed."""
    return pyotp.TOTP(
        base64.b32encode(seed).decode("ascii"), digits=DIGITS, digest=hashlib.sha256, interval=STEP_SECONDS
    )


def step_of(unix_time: float) -> int:
    """The time step a moment falls in."""
    return int(unix_time // STEP_SECONDS)


def code_at_step(generator: pyotp.TOTP, step: int) -> str:
    """The code for one time step."""
    return generator.generate_otp(step)


def is_code(text: str) -> bool:
    """Whether keyed digits have the shape of an app code."""
    return bool(_CODE.fullmatch(text))


def valid_steps(unix_time: float) -> range:
    """Steps whose codes a terminal accepts at `unix_time`."""
    now = step_of(unix_time)
    return range(now - VALID_WINDOW, now + VALID_WINDOW + 1)


def matching_step(generator: pyotp.TOTP, code: str, unix_time: float) -> int | None:
    """The accepted step whose code equals `code`, or None (constant-time comparison per step)."""
    if not is_code(code):  # ASCII digits only: pyotp's own comparison would fold full-width digits
        return None
    for step in valid_steps(unix_time):
        if hmac.compare_digest(code.encode(), code_at_step(generator, step).encode()):
            return step
    return None


@dataclass(frozen=True)
class AppCodeQr:
    """What a resident's app-code QR carries: the credential id and its current code."""

    credential: int
    code: str

    def text(self) -> str:
        """The QR text, e.g. GHA1:1234:04918273 (QR alphanumeric mode)."""
        return f"{QR_PREFIX}:{self.credential}:{self.code}"


def parse_qr(text: str) -> AppCodeQr:
    """Parse an app-code QR text, or raise AppCodeFormatError."""
    match = _QR.fullmatch(text.strip())
    if match is None:
        raise AppCodeFormatError("not a Gatehouse app-code QR")
    credential = int(match.group(1))
    if credential > 2**31 - 1:
        raise AppCodeFormatError("credential id out of range")
    return AppCodeQr(credential, match.group(2))


def provisioning_uri(seed: bytes, account: str) -> str:
    """otpauth:// URI for the resident's app (carries the seed: show it once, never log it)."""
    return totp(seed).provisioning_uri(name=account, issuer_name=ISSUER)
