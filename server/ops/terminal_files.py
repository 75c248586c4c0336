"""The files a terminal needs: its config, its broker password and the server's public key."""

from __future__ import annotations

import shutil
from pathlib import Path

import tomli_w

from gatehouse_core.credential_hash import site_hashing_key
from gatehouse_core.keyring import SIGNING_PUBLIC_KEY, load_keys, terminal_seal_key


def write_terminal_dir(
    out_dir: Path,
    key_dir: Path,
    site: str,
    ident: str,
    password: str,
    broker_host: str,
    broker_port: int,
    broker_ca: Path | None = None,
) -> Path:
    """Write terminal.toml, the broker password, seal and credential keys (0600) and the server key into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_secret(out_dir / "mqtt_password", password)
    keys = load_keys(key_dir)
    _write_secret(out_dir / "seal.key", terminal_seal_key(keys.template_key, ident).hex())
    # Terminals hash presented cards, ID numbers and visitor codes exactly as the server did.
    _write_secret(out_dir / "credential.key", site_hashing_key(keys.credential_secret, site).hex())
    shutil.copyfile(key_dir / SIGNING_PUBLIC_KEY, out_dir / "server_signing.pub.pem")
    mqtt: dict[str, object] = {
        "host": broker_host,
        "port": broker_port,
        "username": ident,
        "password_file": "mqtt_password",
    }
    if broker_ca is not None:
        # The broker's CA (tls/ca.crt from `gatehouse broker files`), pinned by the terminal.
        shutil.copyfile(broker_ca, out_dir / "mqtt-ca.pem")
        mqtt.update({"tls": True, "ca_file": "mqtt-ca.pem"})
    document = {
        "terminal_id": ident,
        "site": site,
        "data_dir": "data",
        "server_public_key": "server_signing.pub.pem",
        "seal_key_file": "seal.key",
        "credential_key_file": "credential.key",
        "log_level": "INFO",
        "mqtt": mqtt,
    }
    path = out_dir / "terminal.toml"
    path.write_text(
        "# Written by `gatehouse terminal add`; see config/terminal.example.toml.\n" + tomli_w.dumps(document)
    )
    return path


def _write_secret(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text + "\n", encoding="utf-8")
