"""`gatehouse db`: create or migrate the database schema."""

from __future__ import annotations

from pathlib import Path

import click

from gatehouse_core.keyring import KeyDirError
from server.cli.common import config_option, fail, load_or_exit, setup_logging


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@config_option
def db_upgrade(config_path: Path) -> None:
    """Create or migrate the database schema to the latest version."""
    from flask_migrate import upgrade

    from server.app import MIGRATIONS_DIR, create_app
    from server.config import load_server_config
    from server.ops.private_files import private_sqlite

    config = load_or_exit(load_server_config, config_path)
    setup_logging("WARNING")
    # SQLite makes the file on first connect with the umask's mode; it holds names, phones and dates of birth.
    private_sqlite(config.database_url)
    try:
        app = create_app(config)
    except KeyDirError as exc:
        fail(str(exc))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
    click.echo("database is up to date")
