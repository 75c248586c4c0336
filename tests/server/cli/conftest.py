"""Fixtures of the CLI tests: a production server config on an upgraded, empty database (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from server.app import MIGRATIONS_DIR, create_app
from server.config import load_server_config
from server.extensions import db


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request: pytest.FixtureRequest, tmp_path: Path, key_dir: Path) -> Iterator[Path]:
    """A server config on an upgraded, empty database."""
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gh.db'}"
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        name = f"gatehouse_cli_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    path = tmp_path / "server.toml"
    path.write_text(f'mode = "production"\ndatabase_url = "{url}"\nkey_dir = "{key_dir}"\n')
    # Migrated here rather than by `gatehouse db upgrade`, which leaves its PostgreSQL pool open.
    app = create_app(load_server_config(path))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        db.engine.dispose()
    yield path
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
