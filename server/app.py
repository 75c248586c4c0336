"""The console application factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from gatehouse_core.keyring import ServerKeys, init_keys, load_keys
from server.config import ServerConfig
from server.extensions import csrf, db, login_manager, migrate
from server.ops.private_files import private_sqlite
from server.services.accounts.users import SESSION_LIFETIME
from server.services.face.enrollment import EnrollmentEngine
from server.state import Gatehouse
from server.web.uploads import InMemoryUploadRequest

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")
log = logging.getLogger(__name__)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLite ignores foreign keys unless asked, and WAL lets the worker write while the console reads.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def resolve_keys(config: ServerConfig) -> ServerKeys:
    """Load the key directory; in development mode, create missing keys first."""
    if config.mode == "development":
        created = init_keys(config.key_dir)
        if created:
            log.warning("development mode: created %d missing key file(s) in %s", len(created), config.key_dir)
    return load_keys(config.key_dir)


def create_app(config: ServerConfig, *, keys: ServerKeys | None = None, testing: bool = False) -> Flask:
    """Build the console app for `config`; raises KeyDirError if production keys are missing."""
    app = Flask(__name__, template_folder="console/templates", static_folder="console/static")
    app.request_class = InMemoryUploadRequest
    keys = keys if keys is not None else resolve_keys(config)
    production = config.mode == "production"
    app.config.update(
        SECRET_KEY=keys.session_secret,
        SQLALCHEMY_DATABASE_URI=config.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_SECURE=production,
        # __Host- cookies are sent only over HTTPS, to this exact host, for every path: no subdomain can set them.
        SESSION_COOKIE_NAME="__Host-gatehouse" if production else "gatehouse",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        TESTING=testing,
    )
    if config.trusted_proxies:
        # Only as many hops as configured: a browser cannot claim an address by sending the header itself.
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.extensions["gatehouse"] = Gatehouse(config=config, keys=keys, face=EnrollmentEngine(config.face))
    # A SQLite database is created 0600 in a 0700 folder before SQLite first opens it (it holds people's data).
    private_sqlite(config.database_url)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    login_manager.init_app(app)
    csrf.init_app(app)

    from server.console import register_console
    from server.console.integrations import bp as integrations_page
    from server.ops_api import register_ops_api

    register_console(app)
    app.register_blueprint(integrations_page)  # Administration → Integrations: API keys and webhooks
    register_ops_api(app)
    return app
