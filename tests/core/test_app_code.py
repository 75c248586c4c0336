"""gatehouse_core.app_code: RFC 6238 codes (8 digits, 30 s, HMAC-SHA256), the accepted window and the QR text."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from gatehouse_core import app_code
from gatehouse_core.app_code import AppCodeFormatError, AppCodeQr, parse_qr

SEED = bytes(range(1, 21))  # 160 bits, like the seeds the server makes
# RFC 6238 appendix B: the SHA-256 seed is the ASCII string "1234567890" repeated to 32 bytes.
RFC_SEED_SHA256 = b"12345678901234567890123456789012"
STEP = 1_000_000  # an arbitrary step well after the epoch (11 Jan 1971 + a few hours)
ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in "12345678")
FULL_WIDTH = "".join(chr(0xFF10 + int(d)) for d in "12345678")


def reference(seed: bytes) -> pyotp.TOTP:
    """An independently configured pyotp generator: the expectations below do not come from app_code."""
    return pyotp.TOTP(base64.b32encode(seed).decode(), digits=8, digest=hashlib.sha256, interval=30)


def code_of_step(seed: bytes, step: int) -> str:
    return reference(seed).at(step * 30)


# ---- RFC 6238 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [
        (59, "46119246"),
        (1111111109, "68084774"),
        (1111111111, "67062674"),
        (1234567890, "91819424"),
        (2000000000, "90698825"),
        (20000000000, "77737706"),
    ],
)
def test_rfc6238_appendix_b_sha256_vectors(unix_time: int, expected: str) -> None:
    generator = app_code.totp(RFC_SEED_SHA256)
    assert app_code.code_at_step(generator, app_code.step_of(unix_time)) == expected
    assert generator.at(unix_time) == expected
    assert app_code.matching_step(generator, expected, unix_time) == unix_time // 30


def test_parameters_are_8_digits_30_seconds_sha256() -> None:
    generator = app_code.totp(SEED)
    assert (generator.digits, generator.interval) == (8, 30)
    assert generator.digest().name == "sha256"
    assert base64.b32decode(generator.secret) == SEED
    assert (app_code.DIGITS, app_code.STEP_SECONDS, app_code.VALID_WINDOW) == (8, 30, 1)


def test_step_of_boundaries() -> None:
    assert app_code.step_of(0) == 0
    assert app_code.step_of(29.999) == 0
    assert app_code.step_of(30) == 1
    assert app_code.step_of(30 * STEP - 0.001) == STEP - 1
    assert app_code.step_of(30 * STEP) == STEP


def test_code_at_step_matches_pyotp() -> None:
    generator = app_code.totp(SEED)
    for step in (0, 1, STEP, 2**31, 56_666_666):
        assert app_code.code_at_step(generator, step) == code_of_step(SEED, step)


# ---- accepted window ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unix_time",
    [
        30 * STEP - 30,  # first second of step s-1
        30 * STEP - 1,  # last second of step s-1
        30 * STEP,  # first second of step s
        30 * STEP + 15.5,
        30 * (STEP + 1) - 0.001,
        30 * (STEP + 1),  # first second of step s+1
        30 * (STEP + 2) - 1,  # last whole second of step s+1
        30 * (STEP + 2) - 0.001,
    ],
)
def test_code_of_step_s_is_accepted_in_steps_s_minus_1_to_s_plus_1(unix_time: float) -> None:
    code = code_of_step(SEED, STEP)
    assert app_code.matching_step(app_code.totp(SEED), code, unix_time) == STEP


@pytest.mark.parametrize(
    "unix_time",
    [
        30 * STEP - 31,  # last second of step s-2
        30 * STEP - 60,  # first second of step s-2
        30 * (STEP - 1) - 0.001,
        30 * (STEP + 2),  # first second of step s+2
        30 * (STEP + 3) - 1,  # last second of step s+2
        30 * (STEP + 10),
        30 * (STEP - 10),
    ],
)
def test_code_of_step_s_is_refused_from_step_s_plus_2_and_before_s_minus_1(unix_time: float) -> None:
    code = code_of_step(SEED, STEP)
    # The precondition that makes "refused" meaningful: no accepted step has this code by chance.
    assert all(code_of_step(SEED, s) != code for s in app_code.valid_steps(unix_time))
    assert app_code.matching_step(app_code.totp(SEED), code, unix_time) is None


def test_valid_steps_are_previous_current_next() -> None:
    assert list(app_code.valid_steps(30 * STEP)) == [STEP - 1, STEP, STEP + 1]
    assert list(app_code.valid_steps(30 * STEP - 1)) == [STEP - 2, STEP - 1, STEP]
    assert list(app_code.valid_steps(30 * (STEP + 1) - 0.5)) == [STEP - 1, STEP, STEP + 1]


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_matching_step_returns_the_step_of_the_code(offset: int) -> None:
    now = 30 * STEP + 7
    step = STEP + offset
    assert app_code.matching_step(app_code.totp(SEED), code_of_step(SEED, step), now) == step


def test_code_of_another_seed_or_a_wrong_code_is_refused() -> None:
    now = 30 * STEP + 7
    generator = app_code.totp(SEED)
    other = bytes(20)
    foreign = code_of_step(other, STEP)
    assert all(foreign != code_of_step(SEED, s) for s in app_code.valid_steps(now))
    assert app_code.matching_step(generator, foreign, now) is None
    good = code_of_step(SEED, STEP)
    wrong = f"{(int(good) + 1) % 10**8:08d}"
    assert all(wrong != code_of_step(SEED, s) for s in app_code.valid_steps(now))
    assert app_code.matching_step(generator, wrong, now) is None
    # A prefix, an empty string or the code with something appended never matches.
    for text in ("", good[:7], good + "0", " " + good):
        assert app_code.matching_step(generator, text, now) is None


# ---- shape of codes -----------------------------------------------------------------------------------------------


def test_codes_keep_leading_zeros() -> None:
    generator = app_code.totp(SEED)
    step = next(s for s in range(STEP, STEP + 10_000) if code_of_step(SEED, s).startswith("0"))
    code = app_code.code_at_step(generator, step)
    assert code == code_of_step(SEED, step)
    assert len(code) == 8 and code[0] == "0"
    assert app_code.is_code(code)
    assert app_code.matching_step(generator, code, step * 30) == step
    # The same number without its leading zero is not the code.
    assert app_code.matching_step(generator, str(int(code)), step * 30) is None


def test_every_code_has_exactly_8_digits() -> None:
    generator = app_code.totp(SEED)
    for step in range(STEP, STEP + 500):
        code = app_code.code_at_step(generator, step)
        assert len(code) == 8 and code.isdigit() and code.isascii()


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("12345678", True),
        ("00000000", True),
        ("1234567", False),
        ("123456789", False),
        ("1234 5678", False),
        ("1234567a", False),
        ("12345678\n", False),
        ("", False),
        (ARABIC_INDIC, False),  # digits to str.isdigit, not to a keypad
        (FULL_WIDTH, False),  # NFKC would fold them to ASCII
    ],
)
def test_is_code(text: str, ok: bool) -> None:
    assert app_code.is_code(text) is ok


# ---- QR text --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", [1, 42, 1234, 2**31 - 1])
@pytest.mark.parametrize("code", ["00000000", "04918273", "99999999"])
def test_qr_round_trip(credential: int, code: str) -> None:
    qr = AppCodeQr(credential, code)
    text = qr.text()
    assert text == f"GHA1:{credential}:{code}"
    assert parse_qr(text) == qr


def test_qr_text_is_qr_alphanumeric() -> None:
    alphanumeric = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    assert set(AppCodeQr(2**31 - 1, "01234567").text()) <= alphanumeric


def test_qr_tolerates_surrounding_whitespace_from_scanners() -> None:
    assert parse_qr("  GHA1:7:01234567\r\n") == AppCodeQr(7, "01234567")


@pytest.mark.parametrize(
    "text",
    [
        "GHA2:7:01234567",  # wrong prefix
        "GHP1:7:01234567",
        "XGHA1:7:01234567",
        "gha1:7:01234567",  # lower-case prefix
        "Gha1:7:01234567",
        "GHA1:7:0123456",  # 7 digits
        "GHA1:7:012345678",  # 9 digits
        "GHA1:7:",
        "GHA1::01234567",
        "GHA1:0:01234567",  # id 0
        "GHA1:00:01234567",
        "GHA1:07:01234567",  # leading zero in the id
        "GHA1:-7:01234567",
        "GHA1:+7:01234567",
        f"GHA1:{2**31}:01234567",  # id > 2^31-1
        "GHA1:9999999999:01234567",
        "GHA1:99999999999:01234567",
        "GHA1: 7:01234567",  # spaces inside
        "GHA1:7 :01234567",
        "GHA1:7: 01234567",
        "GHA1 :7:01234567",
        "GHA1:7:0123 4567",
        "GHA1:7:01234567:",
        "GHA1:7:01234567:8",
        "GHA1:7:0123456a",
        "GHA1:\u0667:01234567",  # a non-ASCII digit in the id
        f"GHA1:7:{ARABIC_INDIC}",
        f"GHA1:7:{FULL_WIDTH}",
        "GHA1:7:01234567\n\n8",
        "GHA1-7-01234567",
        "",
        "   ",
        "GHA1",
    ],
)
def test_malformed_qr_text_is_refused(text: str) -> None:
    with pytest.raises(AppCodeFormatError):
        parse_qr(text)


def test_qr_format_error_is_a_value_error() -> None:
    assert issubclass(AppCodeFormatError, ValueError)


# ---- provisioning ---------------------------------------------------------------------------------------------------


def test_provisioning_uri_names_sha256_8_digits_30_seconds_and_issuer() -> None:
    uri = app_code.provisioning_uri(SEED, "alice@example.org")
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert unquote(parsed.path) == "/Gatehouse:alice@example.org"
    params = parse_qs(parsed.query)
    assert params["algorithm"] == ["SHA256"]
    assert params["digits"] == ["8"]
    # The Key URI Format's default period is 30 s; pyotp omits the parameter when it has that value.
    assert params.get("period", ["30"]) == ["30"]
    assert params["issuer"] == ["Gatehouse"]
    assert base64.b32decode(params["secret"][0] + "=" * (-len(params["secret"][0]) % 8)) == SEED
    # The app built from the URI produces the same codes as the terminals.
    app = pyotp.parse_uri(uri)
    assert isinstance(app, pyotp.TOTP)
    assert app.at(30 * STEP) == code_of_step(SEED, STEP)


def test_matching_step_refuses_full_width_digits() -> None:
    seed = bytes(range(20))
    generator = app_code.totp(seed)
    at = 1_800_000_000.0
    code = app_code.code_at_step(generator, app_code.step_of(at))
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    assert app_code.matching_step(generator, code, at) == app_code.step_of(at)
    assert app_code.matching_step(generator, full_width, at) is None
