"""The mobile API application factory: /api/v1 for the residents' app, and the visitors' share page."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from flask_openapi3 import Info, OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix

from gatehouse_core.keyring import ServerKeys, load_keys
from mobile_api.auth import SECURITY_SCHEMES
from mobile_api.config import MobileApiConfig
from mobile_api.errors import BoundedJSONProvider, register_error_handlers, validation_error
from mobile_api.limits import make_limiter
from mobile_api.schemas.common import ApiError
from mobile_api.state import build_state
from server.models import db
from server.ops.private_files import private_sqlite
from server.web.uploads import InMemoryUploadRequest

API_VERSION = "1.0.0"
OPENAPI_PATH = "/api/v1/openapi.json"
# Enough for a selfie (the face section's max_photo_bytes is checked again by the enrollment service).
MAX_REQUEST_BYTES = 12 * 1024 * 1024

DESCRIPTION = """The Gatehouse residents' app API.

Sign in with a username or phone number and a password, or with a one-time code sent to the phone on file.
Every other call needs `Authorization: Bearer <access token>`. Access tokens last minutes; swap the refresh
token for a new pair at /auth/refresh (each refresh token works once). Errors are always
`{"error": code, "message": text}`. This API never returns face templates, photos, card numbers or hashes.
"""


def create_app(config: MobileApiConfig, *, keys: ServerKeys | None = None, testing: bool = False) -> Flask:
    """Build the mobile API for `config`; raises KeyDirError if the key directory is incomplete."""
    app = OpenAPI(
        __name__,
        info=Info(title="Gatehouse mobile API", version=API_VERSION, description=DESCRIPTION),
        security_schemes=SECURITY_SCHEMES,
        validation_error_status=400,
        validation_error_model=ApiError,
        validation_error_callback=validation_error,
        doc_ui=False,
    )
    app.request_class = InMemoryUploadRequest  # selfies never spool to a temporary file
    app.json = BoundedJSONProvider(app)  # a deeply nested body is a 400, not a RecursionError
    keys = keys if keys is not None else load_keys(config.key_dir)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=config.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SECRET_KEY=keys.session_secret,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        TESTING=testing,
    )
    if config.trusted_proxies:
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.extensions["gatehouse_mobile"] = build_state(config, keys)
    # A SQLite database is created 0600 in a 0700 folder before SQLite first opens it (it holds people's data).
    private_sqlite(config.database_url)
    db.init_app(app)
    register_error_handlers(app)
    limiter = make_limiter(app, config.rate_limits)

    from mobile_api.routes import register_routes

    register_routes(app, limiter, config.rate_limits)

    @app.get("/api/v1/health", doc_ui=False)
    def health() -> Response:
        return jsonify(status="ok", version=1)

    def openapi_document() -> Response:
        return jsonify(app.api_doc)

    # The document is built from the same pydantic models that validate each request.
    app.add_url_rule(OPENAPI_PATH, "openapi_document", openapi_document)
    limiter.exempt(openapi_document)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        return response

    return app
