"""The audit log is append-only: neither the ORM nor raw SQL may change or delete an entry (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError

from server.app import MIGRATIONS_DIR, create_app
from server.extensions import db
from server.models import AuditEntry, ConsoleUser, Site
from server.models.audit_guard import POSTGRESQL_DDL, SQLITE_DDL, AuditLogAppendOnly
from server.services import audit
from server.services.access import sites
from server.services.audit import Actor
from tests.conftest import TEST_ACTOR, server_config


@pytest.fixture
def entry(make_site: Callable[..., Site], make_user: Callable[..., ConsoleUser]) -> AuditEntry:
    """An audit entry naming a console user and a site."""
    site, user = make_site(), make_user()
    recorded = audit.record(
        db.session, Actor.of(user), "test.action", "site", site.id, site_id=site.id, details={"n": 1}
    )
    db.session.commit()
    return recorded


def snapshot(entry_id: int) -> tuple[Any, ...]:
    db.session.expire_all()
    row = db.session.execute(select(AuditEntry.__table__).where(AuditEntry.id == entry_id)).one()
    return tuple(row)


# ---- ORM --------------------------------------------------------------------------------------------------------


def test_orm_delete_is_refused(entry: AuditEntry) -> None:
    db.session.delete(entry)
    with pytest.raises(AuditLogAppendOnly, match="append-only"):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEntry, entry.id) is not None


@pytest.mark.parametrize(
    ("column", "value"),
    [("action", "forged"), ("details", {"n": 2}), ("actor_label", "someone-else"), ("target_id", "9")],
)
def test_orm_update_is_refused(entry: AuditEntry, column: str, value: Any) -> None:
    before = snapshot(entry.id)
    setattr(entry, column, value)
    with pytest.raises(AuditLogAppendOnly, match=column):
        db.session.commit()
    db.session.rollback()
    assert snapshot(entry.id) == before


def test_orm_may_not_point_an_entry_at_another_site(entry: AuditEntry, make_site: Callable[..., Site]) -> None:
    other = make_site()
    entry.site_id = other.id
    with pytest.raises(AuditLogAppendOnly, match="site_id"):
        db.session.flush()
    db.session.rollback()


def test_orm_bulk_update_and_delete_are_refused(entry: AuditEntry) -> None:
    with pytest.raises(AuditLogAppendOnly, match="bulk UPDATE"):
        db.session.execute(update(AuditEntry).values(action="forged"))
    with pytest.raises(AuditLogAppendOnly, match="bulk DELETE"):
        db.session.execute(delete(AuditEntry))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) >= 1


def test_reading_and_appending_still_work(entry: AuditEntry) -> None:
    audit.record(db.session, TEST_ACTOR, "test.other", "site", entry.site_id, site_id=entry.site_id)
    db.session.commit()
    assert db.session.get(AuditEntry, entry.id) is not None
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "test.other")) == 1


# ---- raw SQL: the database triggers -----------------------------------------------------------------------------


def raw(sql: str, **params: Any) -> None:
    """Run SQL on a connection of its own, outside the ORM and its listeners."""
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_entries WHERE id = :id",
        "DELETE FROM audit_entries",
        "UPDATE audit_entries SET action = 'forged' WHERE id = :id",
        "UPDATE audit_entries SET details = '{\"n\": 2}' WHERE id = :id",
        "UPDATE audit_entries SET actor_label = 'x' WHERE id = :id",
        "UPDATE audit_entries SET target_id = NULL WHERE id = :id",
        "UPDATE audit_entries SET site_id = :other WHERE id = :id",
        "UPDATE audit_entries SET actor_id = NULL, site_id = :other WHERE id = :id",
        "UPDATE audit_entries SET actor_id = NULL, action = 'forged' WHERE id = :id",
    ],
)
def test_raw_sql_cannot_change_or_delete_entries(entry: AuditEntry, make_site: Callable[..., Site], sql: str) -> None:
    other = make_site().id
    before = snapshot(entry.id)
    db.session.commit()
    with pytest.raises(IntegrityError, match="append-only"):
        raw(sql, id=entry.id, other=other)
    assert snapshot(entry.id) == before


def test_raw_sql_may_set_actor_and_site_to_null(entry: AuditEntry) -> None:
    # What ON DELETE SET NULL does; the trigger must let it through.
    raw("UPDATE audit_entries SET actor_id = NULL, site_id = NULL WHERE id = :id", id=entry.id)
    db.session.expire_all()
    reloaded = db.session.get_one(AuditEntry, entry.id)
    assert (reloaded.actor_id, reloaded.site_id, reloaded.action) == (None, None, "test.action")


def test_deleting_a_console_user_keeps_their_entries_with_the_label(entry: AuditEntry) -> None:
    user_id = entry.actor_id
    assert user_id is not None
    db.session.delete(db.session.get_one(ConsoleUser, user_id))
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get_one(AuditEntry, entry.id)
    assert kept.actor_id is None and kept.actor_label == "manager1" and kept.action == "test.action"


def test_deleting_a_site_keeps_its_entries(entry: AuditEntry) -> None:
    site_id = entry.site_id
    assert site_id is not None
    db.session.delete(db.session.get_one(Site, site_id))
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get_one(AuditEntry, entry.id)
    assert kept.site_id is None and kept.target_id == str(site_id) and kept.details == {"n": 1}


# ---- the migration installs the same guard ----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path: Any, key_dir: Any, keys: Any) -> Iterator[Flask]:
    """An app on a database built by the Alembic migrations (not create_all)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        admin = None
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        name = f"gatehouse_audit_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    app = create_app(server_config(url, key_dir), keys=keys)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        yield app
        db.session.remove()
        db.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrated_database_refuses_changes_and_allows_set_null(migrated: Flask) -> None:
    site = sites.create_site(db.session, TEST_ACTOR, code="oak", name="Oak")
    db.session.commit()
    (entry_id,) = db.session.scalars(select(AuditEntry.id).where(AuditEntry.site_id == site.id))
    with pytest.raises(IntegrityError, match="append-only"):
        raw("DELETE FROM audit_entries")
    with pytest.raises(IntegrityError, match="append-only"):
        raw("UPDATE audit_entries SET action = 'forged'")
    db.session.delete(site)
    db.session.commit()
    kept = db.session.get_one(AuditEntry, entry_id)
    assert kept.site_id is None and kept.action == "site.create"


def test_migration_installs_the_triggers_the_models_attach(migrated: Flask) -> None:
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            installed = conn.execute(
                text(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entries' ORDER BY name"
                )
            ).scalars()
            assert list(installed) == sorted(SQLITE_DDL)
        else:
            (body,) = conn.execute(text("SELECT prosrc FROM pg_proc WHERE proname = 'audit_entries_append_only'"))
            assert body[0].strip() in POSTGRESQL_DDL[0]
            triggers = conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_entries'::regclass AND NOT tgisinternal "
                    "ORDER BY tgname"
                )
            ).scalars()
            assert list(triggers) == ["audit_entries_no_delete", "audit_entries_no_update"]
