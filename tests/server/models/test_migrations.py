"""The Alembic migrations produce exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from server.app import MIGRATIONS_DIR, create_app
from server.extensions import db
from server.models import Base, people_search
from tests.conftest import server_config


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    name = f"gatehouse_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def include_object(obj, name, type_, reflected, compare_to):
    """SQLite's people search index is raw DDL the models do not declare (models/people_search.py)."""
    return not (type_ == "table" and reflected and compare_to is None and people_search.is_search_table(name))


def _diff(url):
    engine = create_engine(url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_object}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_migrations_match_models(empty_db_url, key_dir, keys):
    app = create_app(server_config(empty_db_url, key_dir), keys=keys)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        db.engine.dispose()
    assert _diff(empty_db_url) == []


def test_downgrade_then_upgrade_round_trips(empty_db_url, key_dir, keys):
    app = create_app(server_config(empty_db_url, key_dir), keys=keys)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        downgrade(directory=MIGRATIONS_DIR, revision="base")
        tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade(directory=MIGRATIONS_DIR)
        assert set(inspect(db.engine).get_table_names()) >= set(Base.metadata.tables)
        db.engine.dispose()
