"""The property managers' web console (server-rendered)."""

from __future__ import annotations

import logging

from flask import Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from server.console.i18n import init_i18n
from server.console.nav import current_endpoint, nav_items, nav_sections
from server.console.ui import badge, icon
from server.extensions import db, login_manager
from server.models import ConsoleRole, ConsoleUser
from server.services.accounts.users import load_session_user
from server.services.errors import DomainError

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_ROLE_LABELS = {ConsoleRole.ADMIN: _l("admin"), ConsoleRole.MANAGER: _l("manager"), ConsoleRole.GUARD: _l("guard")}


def role_label(role: ConsoleRole) -> str:
    """A role's name in the user's language."""
    return str(_ROLE_LABELS.get(role, role.value))


def register_console(app: Flask) -> None:
    """Attach the console blueprints, the user loader and the error pages."""
    from server.console import access, auth, monitor, passes, people, privacy, subject_access, terminals, views
    from server.console.forms import refuse_control_characters
    from server.console.operations import routes as operations
    from server.console.person import app as person_app
    from server.console.person import common as person
    from server.console.person import credentials, face, page  # noqa: F401  (their routes join the person blueprint)

    init_i18n(app)
    app.before_request(refuse_control_characters)  # every form's text, checked once before any view reads it
    for area in (auth, views, subject_access, people, person, person_app, access, passes, terminals, monitor, privacy):
        app.register_blueprint(area.bp)
    app.register_blueprint(operations.bp)
    app.jinja_env.globals.update(
        nav_items=nav_items,
        nav_sections=nav_sections,
        current_endpoint=current_endpoint,
        role_label=role_label,
        icon=icon,
        badge=badge,
    )

    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to continue.")
    login_manager.session_protection = "strong"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # No inline script or style anywhere in the console, so the policy can be strict.
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @login_manager.user_loader
    def _load_user(session_id: str) -> ConsoleUser | None:
        return load_session_user(db.session, session_id)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Response:
        db.session.rollback()
        from server.services.wording.operators import describe

        flash(describe(exc), "error")
        return redirect(request.referrer or url_for("views.dashboard"))  # type: ignore[return-value]

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, message=exc.description), exc.code or 500

    @app.errorhandler(Exception)
    def _server_error(exc: Exception) -> tuple[str, int]:
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_template("error.html", code=500, message=_("Something went wrong; nothing was saved.")), 500

    @app.get("/healthz")
    def _health() -> Response:
        return jsonify(status="ok")
