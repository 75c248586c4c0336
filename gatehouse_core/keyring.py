"""The server's key directory: signing keypair, credential-hashing secret, template and session keys.

Keys live in files with mode 0600 in a directory of their own, never in the database, so a database
dump alone cannot forge sync messages, reverse card hashes or decrypt face templates.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SIGNING_KEY = "signing_ed25519.pem"
SIGNING_PUBLIC_KEY = "signing_ed25519.pub.pem"
CREDENTIAL_SECRET = "credential_hmac.key"  # noqa: S105 - a file name
TEMPLATE_KEY = "template_aes256.key"
SESSION_SECRET = "session_secret.key"  # noqa: S105 - a file name

_SECRET_FILES = (CREDENTIAL_SECRET, TEMPLATE_KEY, SESSION_SECRET)


class KeyDirError(Exception):
    """The key directory is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class ServerKeys:
    """All server-side keys, loaded into memory."""

    signing_key: Ed25519PrivateKey
    credential_secret: bytes
    template_key: bytes
    session_secret: bytes

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The verification key terminals pin."""
        return self.signing_key.public_key()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def init_keys(key_dir: Path | str, *, overwrite: bool = False) -> list[Path]:
    """Create every missing key file in `key_dir`; return the files written. Never replaces keys unless told."""
    key_dir = Path(key_dir)
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    written: list[Path] = []
    signing_path = key_dir / SIGNING_KEY
    if overwrite or not signing_path.exists():
        for name in (SIGNING_KEY, SIGNING_PUBLIC_KEY):
            (key_dir / name).unlink(missing_ok=True)
        private = Ed25519PrivateKey.generate()
        _write_private(
            signing_path,
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        (key_dir / SIGNING_PUBLIC_KEY).write_bytes(public_key_pem(private.public_key()))
        written += [signing_path, key_dir / SIGNING_PUBLIC_KEY]
    for name in _SECRET_FILES:
        path = key_dir / name
        if overwrite or not path.exists():
            path.unlink(missing_ok=True)
            _write_private(path, secrets.token_bytes(32))
            written.append(path)
    return written


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """PEM text of a public key, as terminals store it."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """Load a pinned server public key (terminal side)."""
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise KeyDirError(f"server public key {path} not found; copy it from the server's key directory") from None
    except ValueError:
        raise KeyDirError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyDirError(f"{path} is not an Ed25519 public key")
    return key


def load_keys(key_dir: Path | str) -> ServerKeys:
    """Load the key directory; raise KeyDirError with the fix when anything is missing."""
    key_dir = Path(key_dir)
    hint = f"run `gatehouse keys init --key-dir {key_dir}`"
    if not key_dir.is_dir():
        raise KeyDirError(f"key directory {key_dir} does not exist; {hint}")
    missing = [n for n in (SIGNING_KEY, *_SECRET_FILES) if not (key_dir / n).is_file()]
    if missing:
        raise KeyDirError(f"key directory {key_dir} lacks {', '.join(missing)}; {hint}")
    try:
        private = serialization.load_pem_private_key((key_dir / SIGNING_KEY).read_bytes(), password=None)
    except (ValueError, TypeError):
        raise KeyDirError(
            f"{key_dir / SIGNING_KEY} is not an unencrypted PEM private key; restore it from backup"
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyDirError(f"{key_dir / SIGNING_KEY} is not an Ed25519 private key")
    values = {}
    for name in _SECRET_FILES:
        data = (key_dir / name).read_bytes()
        if len(data) != 32:
            raise KeyDirError(f"{key_dir / name} must hold exactly 32 bytes; it holds {len(data)}")
        values[name] = data
    return ServerKeys(
        signing_key=private,
        credential_secret=values[CREDENTIAL_SECRET],
        template_key=values[TEMPLATE_KEY],
        session_secret=values[SESSION_SECRET],
    )


def terminal_seal_key(template_key: bytes, terminal_ident: str) -> bytes:
    """The key sealing one terminal's secrets (face templates, app-code seeds) on the wire and on its disk.

    Derived from the server's template key, so the server never stores it and each terminal's key is
    useless for every other terminal.
    """
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse terminal seal v1:" + terminal_ident.encode()
    )
    return hkdf.derive(template_key)


def load_seal_key(path: Path | str) -> bytes:
    """Read a terminal's seal key file (64 hex digits), or raise KeyDirError with the fix."""
    return _load_hex_key(path, "seal key")


def load_credential_key(path: Path | str) -> bytes:
    """Read a terminal's credential-hashing key file (64 hex digits), or raise KeyDirError with the fix."""
    return _load_hex_key(path, "credential key")


def _load_hex_key(path: Path | str, label: str) -> bytes:
    path = Path(path)
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except OSError as exc:
        raise KeyDirError(f"cannot read the {label} {path}: {exc.strerror}; re-run `gatehouse terminal add`") from None
    except ValueError:
        key = b""
    if len(key) != 32:
        raise KeyDirError(f"{path} must hold 64 hex digits (a 32-byte key); re-run `gatehouse terminal add`")
    return key
