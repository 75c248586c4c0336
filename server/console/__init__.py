"""The property managers' web console (server-rendered)."""

from __future__ import annotations

import logging

from flask import Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from ..extensions import db, login_manager
from ..models import ConsoleUser
from ..services.errors import DomainError
from ..services.users import load_session_user

log = logging.getLogger(__name__)


def register_console(app: Flask) -> None:
    """Attach the console blueprints, the user loader and the error pages."""
    from .auth import bp as auth_bp
    from .subject_access import bp as subject_access_bp
    from .views import bp as views_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(views_bp)
    app.register_blueprint(subject_access_bp)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load_user(session_id: str) -> ConsoleUser | None:
        return load_session_user(db.session, session_id)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Response:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(request.referrer or url_for("views.dashboard"))  # type: ignore[return-value]

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, message=exc.description), exc.code or 500

    @app.errorhandler(Exception)
    def _server_error(exc: Exception) -> tuple[str, int]:
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_template("error.html", code=500, message="Something went wrong; nothing was saved."), 500

    @app.get("/healthz")
    def _health() -> Response:
        return jsonify(status="ok")
