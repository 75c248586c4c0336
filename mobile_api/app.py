"""The mobile API application factory."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from gatehouse_core.keyring import load_keys
from server.extensions import db

from .config import MobileApiConfig


def error_response(code: str, message: str, status: int) -> tuple[Response, int]:
    """The one error shape of this API: {"error": code, "message": text}."""
    return jsonify(error=code, message=message), status


def create_app(config: MobileApiConfig) -> Flask:
    """Build the mobile API for `config`."""
    app = Flask(__name__)
    keys = load_keys(config.key_dir)
    app.config.update(SQLALCHEMY_DATABASE_URI=config.database_url, SECRET_KEY=keys.session_secret)
    app.extensions["gatehouse_mobile"] = config
    db.init_app(app)

    @app.get("/api/v1/health")
    def health() -> Response:
        return jsonify(status="ok", version=1)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return error_response((exc.name or "error").lower().replace(" ", "_"), exc.description or "", exc.code or 500)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> tuple[Response, int]:
        db.session.rollback()
        app.logger.exception("unhandled error")
        return error_response("server_error", "Something went wrong; nothing was saved.", 500)

    return app
