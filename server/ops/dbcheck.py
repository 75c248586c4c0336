"""Is the database schema at the version this code expects?"""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.exc import OperationalError

from server.app import MIGRATIONS_DIR
from server.extensions import db


def schema_problem(app: Flask) -> str | None:
    """None when the database is at the latest migration, else what to do about it."""
    head = ScriptDirectory(MIGRATIONS_DIR).get_current_head()
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            return f"cannot open the database ({exc.orig}); check database_url"
    if current is None:
        return "the database is empty; run `gatehouse db upgrade --config FILE` first"
    if current != head:
        return f"the database is at migration {current}, this code needs {head}; run `gatehouse db upgrade`"
    return None
