"""The files a terminal needs: its config, its broker password and the server's public key."""

from __future__ import annotations

import shutil
from pathlib import Path

import tomli_w

from gatehouse_core.keyring import SIGNING_PUBLIC_KEY


def write_terminal_dir(
    out_dir: Path, key_dir: Path, site: str, ident: str, password: str, broker_host: str, broker_port: int
) -> Path:
    """Write terminal.toml, the broker password file (0600) and the pinned server key into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    password_file = out_dir / "mqtt_password"
    password_file.touch(mode=0o600, exist_ok=True)
    password_file.chmod(0o600)
    password_file.write_text(password + "\n", encoding="utf-8")
    shutil.copyfile(key_dir / SIGNING_PUBLIC_KEY, out_dir / "server_signing.pub.pem")
    document = {
        "terminal_id": ident,
        "site": site,
        "data_dir": "data",
        "server_public_key": "server_signing.pub.pem",
        "log_level": "INFO",
        "mqtt": {"host": broker_host, "port": broker_port, "username": ident, "password_file": "mqtt_password"},
    }
    path = out_dir / "terminal.toml"
    path.write_text(
        "# Written by `gatehouse terminal add`; see config/terminal.example.toml.\n" + tomli_w.dumps(document)
    )
    return path
