"""gatehouse_core.keyring: key directory creation, permissions and loading."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gatehouse_core.keyring import (
    CREDENTIAL_SECRET,
    SESSION_SECRET,
    SIGNING_KEY,
    SIGNING_PUBLIC_KEY,
    TEMPLATE_KEY,
    KeyDirError,
    init_keys,
    load_keys,
    load_public_key,
    public_key_pem,
)

PRIVATE_FILES = (SIGNING_KEY, CREDENTIAL_SECRET, TEMPLATE_KEY, SESSION_SECRET)
ALL_FILES = (*PRIVATE_FILES, SIGNING_PUBLIC_KEY)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def contents(key_dir: Path) -> dict[str, bytes]:
    return {name: (key_dir / name).read_bytes() for name in ALL_FILES}


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    init_keys(path)
    return path


def test_init_creates_every_file(tmp_path: Path) -> None:
    key_dir = tmp_path / "a" / "b" / "keys"
    written = init_keys(key_dir)
    assert sorted(p.name for p in written) == sorted(ALL_FILES)
    assert all(p.parent == key_dir for p in written)
    assert sorted(p.name for p in key_dir.iterdir()) == sorted(ALL_FILES)


@pytest.mark.usefixtures("permissive_umask")
def test_private_files_are_0600_and_directory_0700_even_with_umask_0(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    init_keys(key_dir)
    assert mode(key_dir) == 0o700
    for name in PRIVATE_FILES:
        assert mode(key_dir / name) == 0o600, name


def test_existing_directory_is_tightened_to_0700(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o755)
    key_dir.chmod(0o755)
    init_keys(key_dir)
    assert mode(key_dir) == 0o700


def test_secrets_are_32_random_bytes_each(key_dir: Path) -> None:
    values = [(key_dir / name).read_bytes() for name in (CREDENTIAL_SECRET, TEMPLATE_KEY, SESSION_SECRET)]
    assert all(len(v) == 32 for v in values)
    assert len(set(values)) == 3
    assert b"\x00" * 32 not in values


def test_two_directories_get_different_keys(tmp_path: Path) -> None:
    init_keys(tmp_path / "one")
    init_keys(tmp_path / "two")
    one, two = contents(tmp_path / "one"), contents(tmp_path / "two")
    assert all(one[name] != two[name] for name in ALL_FILES)


def test_second_call_writes_nothing(key_dir: Path) -> None:
    before = contents(key_dir)
    assert init_keys(key_dir) == []
    assert contents(key_dir) == before


def test_only_missing_files_are_written(key_dir: Path) -> None:
    before = contents(key_dir)
    (key_dir / TEMPLATE_KEY).unlink()
    assert init_keys(key_dir) == [key_dir / TEMPLATE_KEY]
    after = contents(key_dir)
    assert after[TEMPLATE_KEY] != before[TEMPLATE_KEY]
    assert {k: v for k, v in after.items() if k != TEMPLATE_KEY} == {
        k: v for k, v in before.items() if k != TEMPLATE_KEY
    }
    assert mode(key_dir / TEMPLATE_KEY) == 0o600


def test_missing_signing_key_regenerates_the_pair(key_dir: Path) -> None:
    old_public = (key_dir / SIGNING_PUBLIC_KEY).read_bytes()
    (key_dir / SIGNING_KEY).unlink()
    written = init_keys(key_dir)
    assert sorted(p.name for p in written) == sorted([SIGNING_KEY, SIGNING_PUBLIC_KEY])
    assert (key_dir / SIGNING_PUBLIC_KEY).read_bytes() != old_public
    assert public_key_pem(load_keys(key_dir).public_key) == (key_dir / SIGNING_PUBLIC_KEY).read_bytes()


def test_overwrite_replaces_every_key(key_dir: Path) -> None:
    before = contents(key_dir)
    written = init_keys(key_dir, overwrite=True)
    assert sorted(p.name for p in written) == sorted(ALL_FILES)
    after = contents(key_dir)
    assert all(after[name] != before[name] for name in ALL_FILES)
    for name in PRIVATE_FILES:
        assert mode(key_dir / name) == 0o600


def test_load_keys_round_trip(key_dir: Path) -> None:
    keys = load_keys(key_dir)
    assert keys.credential_secret == (key_dir / CREDENTIAL_SECRET).read_bytes()
    assert keys.template_key == (key_dir / TEMPLATE_KEY).read_bytes()
    assert keys.session_secret == (key_dir / SESSION_SECRET).read_bytes()
    pinned = load_public_key(key_dir / SIGNING_PUBLIC_KEY)
    assert public_key_pem(pinned) == public_key_pem(keys.public_key)
    signature = keys.signing_key.sign(b"journal delta")
    pinned.verify(signature, b"journal delta")
    with pytest.raises(InvalidSignature):
        pinned.verify(signature, b"journal delta!")


def test_load_keys_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nokeys"
    with pytest.raises(KeyDirError) as info:
        load_keys(missing)
    message = str(info.value)
    assert f"key directory {missing} does not exist" in message
    assert f"gatehouse keys init --key-dir {missing}" in message


@pytest.mark.parametrize("name", PRIVATE_FILES)
def test_load_keys_names_missing_file_and_fix(key_dir: Path, name: str) -> None:
    (key_dir / name).unlink()
    with pytest.raises(KeyDirError) as info:
        load_keys(key_dir)
    message = str(info.value)
    assert f"lacks {name}" in message
    assert f"gatehouse keys init --key-dir {key_dir}" in message
    assert all(other not in message for other in PRIVATE_FILES if other != name)


def test_load_keys_lists_every_missing_file(key_dir: Path) -> None:
    (key_dir / CREDENTIAL_SECRET).unlink()
    (key_dir / SESSION_SECRET).unlink()
    with pytest.raises(KeyDirError, match=f"lacks {CREDENTIAL_SECRET}, {SESSION_SECRET}"):
        load_keys(key_dir)


def test_load_keys_does_not_need_the_public_key_file(key_dir: Path) -> None:
    (key_dir / SIGNING_PUBLIC_KEY).unlink()
    assert len(load_keys(key_dir).credential_secret) == 32


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
@pytest.mark.parametrize("name", [CREDENTIAL_SECRET, TEMPLATE_KEY, SESSION_SECRET])
def test_wrong_length_secret_rejected(key_dir: Path, name: str, size: int) -> None:
    (key_dir / name).write_bytes(b"k" * size)
    with pytest.raises(KeyDirError) as info:
        load_keys(key_dir)
    assert str(info.value) == f"{key_dir / name} must hold exactly 32 bytes; it holds {size}"


def test_non_ed25519_signing_key_rejected(key_dir: Path) -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (key_dir / SIGNING_KEY).write_bytes(ec_pem)
    with pytest.raises(KeyDirError, match="not an Ed25519 private key"):
        load_keys(key_dir)


def test_corrupt_signing_key_raises_key_dir_error(key_dir: Path) -> None:
    (key_dir / SIGNING_KEY).write_bytes(b"not a pem file")
    with pytest.raises(KeyDirError):
        load_keys(key_dir)


def test_load_public_key_missing(tmp_path: Path) -> None:
    path = tmp_path / "server.pub.pem"
    with pytest.raises(KeyDirError) as info:
        load_public_key(path)
    assert str(info.value) == f"server public key {path} not found; copy it from the server's key directory"


def test_load_public_key_not_pem(tmp_path: Path) -> None:
    path = tmp_path / "server.pub.pem"
    path.write_bytes(b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyDirError, match="is not a PEM public key"):
        load_public_key(path)


def test_load_public_key_rejects_private_key_file(key_dir: Path) -> None:
    with pytest.raises(KeyDirError, match="is not a PEM public key"):
        load_public_key(key_dir / SIGNING_KEY)


def test_load_public_key_rejects_other_algorithms(tmp_path: Path) -> None:
    path = tmp_path / "ec.pub.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyDirError, match="is not an Ed25519 public key"):
        load_public_key(path)


def test_public_key_pem_format(key_dir: Path) -> None:
    pem = public_key_pem(load_keys(key_dir).public_key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert pem == (key_dir / SIGNING_PUBLIC_KEY).read_bytes()
