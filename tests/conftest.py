"""Shared fixtures: an app on a fresh database (SQLite and PostgreSQL), keys, factories, real services."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import ServerKeys, init_keys, load_keys
from server.app import create_app
from server.config import ServerConfig
from server.extensions import db
from server.models import Base, ConsoleRole, ConsoleUser, Door, Person, Site
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.accounts import users
from server.services.audit import Actor
from server.services.people import people
from tests.support.daemons import Mosquitto, PostgresServer

TEST_ACTOR = Actor("test")
PASSWORD = "correct horse battery"


# ---- real services -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server for the whole run (own cluster unless GATEHOUSE_TEST_PG_URL is set)."""
    external = os.environ.get("GATEHOUSE_TEST_PG_URL")
    if external:
        yield external
        return
    server = PostgresServer()
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_test_db(pg_url: str) -> Iterator[str]:
    """A database with the model schema, reused by every PostgreSQL test (emptied after each)."""
    name = f"gatehouse_test_{os.getpid()}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A real mosquitto broker on a free port for the whole run."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


# ---- app and database ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key directory made by the real init_keys."""
    path = tmp_path_factory.mktemp("keys") / "keys"
    init_keys(path)
    return path


@pytest.fixture(scope="session")
def keys(key_dir: Path) -> ServerKeys:
    """The loaded server keys."""
    return load_keys(key_dir)


@pytest.fixture(autouse=True)
def quick_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its cheapest (8 KiB, 1 pass) unless a test is marked `real_password_cost`: the format and the
    code paths are the same, and the real cost (users.PASSWORD_PROFILE) is a quarter of a second per hash, paid
    twice by every console test that signs in."""
    if request.node.get_closest_marker("real_password_cost") is None:
        monkeypatch.setattr(users, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the model schema, made once; each test's database starts as a copy of it."""
    path = tmp_path_factory.mktemp("schema") / "schema.db"
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL: a new SQLite file, or the shared PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gatehouse.db'}"
    url: str = request.getfixturevalue("pg_test_db")
    return url


def server_config(db_url: str, key_dir: Path, **overrides: Any) -> ServerConfig:
    """A ServerConfig for tests, validated like a real file."""
    data: dict[str, Any] = {"mode": "development", "database_url": db_url, "key_dir": str(key_dir)}
    data.update(overrides)
    return parse_config(ServerConfig, data)


@pytest.fixture
def app(request: pytest.FixtureRequest, db_url: str, key_dir: Path, keys: ServerKeys) -> Iterator[Flask]:
    """The console app on an empty database with the full schema."""
    sqlite = db_url.startswith("sqlite")
    copied = False
    if sqlite:
        target = Path(db_url.removeprefix("sqlite:///"))
        if not target.exists():
            shutil.copyfile(request.getfixturevalue("sqlite_schema"), target)
            copied = True
    application = create_app(server_config(db_url, key_dir), keys=keys, testing=True)
    with application.app_context():
        if sqlite and not copied:
            db.create_all()
        yield application
        db.session.remove()
        if not sqlite:
            with db.engine.begin() as conn:
                empty_touched_tables(conn)
        db.engine.dispose()


def empty_touched_tables(conn: Any) -> None:
    """Delete the rows a test left, children first, and restart every id sequence it used. TRUNCATE ... CASCADE
    of every table cost PostgreSQL a fifth of a second per test; this costs a few milliseconds."""
    tables = Base.metadata.sorted_tables
    probe = "SELECT '{0}' FROM (SELECT 1 FROM \"{0}\" LIMIT 1) AS x"  # names from the model metadata, not input
    has_rows = " UNION ALL ".join(probe.format(t.name) for t in tables)
    touched = {row[0] for row in conn.execute(text(has_rows))}
    # The append-only audit table refuses DELETE by trigger; replica mode skips triggers for this transaction.
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    for table in reversed(tables):
        if table.name in touched:
            conn.execute(table.delete())
    conn.execute(
        text(
            "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) FROM pg_sequences "
            "WHERE schemaname = current_schema() AND last_value IS NOT NULL"
        )
    )


class IsolatedClient(FlaskClient):
    """Requests share the fixture's app context; forget what one request cached about its user."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g.pop("_login_user", None)
        # Flask-WTF caches the session's CSRF token on g; another client's session must not see it.
        g.pop("csrf_token", None)
        # Flask-Babel caches the chosen locale for the context; each request chooses again.
        g.pop("_flask_babel", None)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the console."""
    app.test_client_class = IsolatedClient
    return app.test_client()


# ---- factories -------------------------------------------------------------------------------------------------


@pytest.fixture
def make_site(app: Flask) -> Callable[..., Site]:
    """Create a site through the service layer."""
    counter = iter(range(1, 10_000))

    def make(code: str | None = None, timezone: str = "Asia/Shanghai") -> Site:
        site = sites.create_site(
            db.session, TEST_ACTOR, code=code or f"site-{next(counter)}", name="Test site", timezone=timezone
        )
        db.session.commit()
        return site

    return make


@pytest.fixture
def make_door(app: Flask) -> Callable[..., Door]:
    """Create a door through the service layer."""

    def make(site: Site, name: str = "Gate", **methods: bool) -> Door:
        door = sites.save_door(db.session, TEST_ACTOR, site, name, DoorMethods(**methods))
        db.session.commit()
        return door

    return make


@pytest.fixture
def make_person(app: Flask) -> Callable[..., Person]:
    """Create a resident through the service layer."""

    def make(site: Site, name: str = "Li Wei", date_of_birth: date | None = None, **kw: Any) -> Person:
        person = people.create_person(db.session, TEST_ACTOR, site, full_name=name, date_of_birth=date_of_birth, **kw)
        db.session.commit()
        return person

    return make


@pytest.fixture
def make_user(app: Flask) -> Callable[..., ConsoleUser]:
    """Create a console user with PASSWORD."""

    def make(username: str = "manager1", role: ConsoleRole = ConsoleRole.MANAGER) -> ConsoleUser:
        user = users.create_user(db.session, TEST_ACTOR, username, PASSWORD, role)
        db.session.commit()
        return user

    return make


def csrf_token(html: str) -> str:
    """The CSRF token embedded in a console page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """Log in through the real form (with its CSRF token)."""
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_token(page.text)})
