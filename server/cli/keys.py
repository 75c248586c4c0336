"""`gatehouse keys`: create the server's keys."""

from __future__ import annotations

from pathlib import Path

import click

from gatehouse_core.keyring import SIGNING_PUBLIC_KEY, init_keys
from server.cli.common import fail, load_or_exit


@click.group("keys")
def keys_group() -> None:
    """Server keys."""


@keys_group.command("init")
@click.option("--key-dir", type=click.Path(file_okay=False, path_type=Path), help="Key directory to create.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GATEHOUSE_CONFIG",
    help="Take the key directory from this server config instead.",
)
@click.option("--force", is_flag=True, help="Replace existing keys. Terminals must then be re-provisioned.")
def keys_init(key_dir: Path | None, config_path: Path | None, force: bool) -> None:
    """Create the signing keypair, credential-hashing secret, template key and session secret."""
    if key_dir is None:
        if config_path is None:
            fail("give --key-dir DIR or --config FILE")
        from server.config import load_server_config

        key_dir = load_or_exit(load_server_config, config_path).key_dir
    written = init_keys(key_dir, overwrite=force)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo(f"all keys already exist in {key_dir}; nothing changed (use --force to replace them)")
    click.echo(f"terminals pin {key_dir / SIGNING_PUBLIC_KEY}")
