"""server.services.terminals.broker_credentials: mosquitto $7$ hashes, checked against the real mosquitto_passwd."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server.services.terminals.broker_credentials import (
    ITERATIONS,
    generate_password,
    mosquitto_hash,
    verify_mosquitto_hash,
)

MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
HASH_RE = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$")


def mosquitto_passwd_tool() -> str:
    """The real tool; a missing tool fails the test (never skips it)."""
    tool = MOSQUITTO_PASSWD if Path(MOSQUITTO_PASSWD).is_file() else shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail(
            f"{MOSQUITTO_PASSWD} not found: install the mosquitto package (e.g. `apt-get install mosquitto`) "
            "so broker password hashes can be checked against the real tool"
        )
    return tool


def passwd_file_hash(tool: str, tmp_path: Path, user: str, password: str) -> str:
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), user, password], check=True, capture_output=True, timeout=30)
    (line,) = path.read_text(encoding="utf-8").splitlines()
    name, encoded = line.split(":", 1)
    assert name == user
    return encoded


def test_round_trip() -> None:
    encoded = mosquitto_hash("correct horse")
    assert verify_mosquitto_hash("correct horse", encoded)


@pytest.mark.parametrize("wrong", ["correct hors", "correct horse ", "Correct horse", "", "correct horse\n"])
def test_wrong_password_fails(wrong: str) -> None:
    assert not verify_mosquitto_hash(wrong, mosquitto_hash("correct horse"))


def test_format_matches_mosquitto() -> None:
    match = HASH_RE.match(mosquitto_hash("pw"))
    assert match is not None
    assert int(match.group(1)) == ITERATIONS
    assert len(base64.b64decode(match.group(2))) == 12
    assert len(base64.b64decode(match.group(3))) == 64


def test_salt_is_random_and_explicit_salt_is_deterministic() -> None:
    assert mosquitto_hash("pw") != mosquitto_hash("pw")
    salt = b"0123456789ab"
    assert mosquitto_hash("pw", salt=salt) == mosquitto_hash("pw", salt=salt)
    assert mosquitto_hash("pw", salt=salt) != mosquitto_hash("pw2", salt=salt)
    assert mosquitto_hash("pw", salt=salt).split("$")[3] == base64.b64encode(salt).decode()


def test_iterations_are_recorded_and_used() -> None:
    salt = b"0123456789ab"
    few = mosquitto_hash("pw", salt=salt, iterations=5)
    assert few.startswith("$7$5$")
    assert few != mosquitto_hash("pw", salt=salt)
    assert verify_mosquitto_hash("pw", few)
    assert not verify_mosquitto_hash("pw", few.replace("$7$5$", "$7$6$"))


def test_unicode_password_round_trip() -> None:
    assert verify_mosquitto_hash("pässwörd ✓", mosquitto_hash("pässwörd ✓"))
    assert not verify_mosquitto_hash("passwort ✓", mosquitto_hash("pässwörd ✓"))


def test_tampered_salt_or_digest_fails() -> None:
    _, version, iterations, salt_b64, digest_b64 = mosquitto_hash("pw", salt=b"0123456789ab").split("$")
    other_salt = base64.b64encode(b"0123456789ac").decode()
    digest = bytearray(base64.b64decode(digest_b64))
    digest[0] ^= 1
    other_digest = base64.b64encode(bytes(digest)).decode()
    assert not verify_mosquitto_hash("pw", f"${version}${iterations}${other_salt}${digest_b64}")
    assert not verify_mosquitto_hash("pw", f"${version}${iterations}${salt_b64}${other_digest}")
    assert not verify_mosquitto_hash("pw", f"${version}${iterations}${salt_b64}${digest_b64[:-4]}")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "pw",
        "$7$",
        "$7$1000$c2FsdA==",
        "$7$1000$c2FsdA==$ZGlnZXN0$extra",
        "$6$1000$c2FsdA==$ZGlnZXN0",
        "$6$rounds=5000$salt$hash",
        "$7$many$c2FsdA==$ZGlnZXN0",
        "$7$1.5$c2FsdA==$ZGlnZXN0",
        "$7$1000$c2FsdA$ZGlnZXN0",
        "$7$1000$c2FsdA==$ZGlnZXN",
        "$7$1000$sälz$ZGlnZXN0",
        "$7$1000$c2FsdA==$",
    ],
)
def test_malformed_hashes_return_false(encoded: str) -> None:
    assert verify_mosquitto_hash("pw", encoded) is False


def test_non_positive_iterations_return_false() -> None:
    assert verify_mosquitto_hash("pw", "$7$0$c2FsdA==$ZGlnZXN0") is False


def test_generate_password() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", password)
        assert verify_mosquitto_hash(password, mosquitto_hash(password))


# ---- the real mosquitto_passwd -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["s3cret", "Xq7-Lr_2bN0vT9kPz4WmC8yHs1dE6aUfJ3gQ5oRi0Kc", "pässwörd with spaces ✓", "a:b$c"]
)
def test_accepts_hash_written_by_mosquitto_passwd(tmp_path: Path, password: str) -> None:
    encoded = passwd_file_hash(mosquitto_passwd_tool(), tmp_path, "door-1", password)
    assert HASH_RE.match(encoded), encoded
    assert verify_mosquitto_hash(password, encoded)
    assert not verify_mosquitto_hash(password + "x", encoded)
    assert not verify_mosquitto_hash(password[:-1], encoded)


def test_mosquitto_passwd_and_ours_share_salt_and_digest_sizes(tmp_path: Path) -> None:
    theirs = passwd_file_hash(mosquitto_passwd_tool(), tmp_path, "door-1", "pw").split("$")
    ours = mosquitto_hash("pw").split("$")
    assert len(theirs) == len(ours) == 5
    assert theirs[1] == ours[1] == "7"
    assert len(base64.b64decode(theirs[3])) == len(base64.b64decode(ours[3]))
    assert len(base64.b64decode(theirs[4])) == len(base64.b64decode(ours[4]))


def test_reproduces_mosquitto_passwd_digest_from_its_salt(tmp_path: Path) -> None:
    encoded = passwd_file_hash(mosquitto_passwd_tool(), tmp_path, "door-1", "s3cret")
    _, _, iterations, salt_b64, _ = encoded.split("$")
    ours = mosquitto_hash("s3cret", salt=base64.b64decode(salt_b64), iterations=int(iterations))
    assert ours == encoded
