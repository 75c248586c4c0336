"""Console login, logout (here or everywhere) and the user's language."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from server.console.i18n import LANGUAGES
from server.console.nav import home_endpoint
from server.extensions import db
from server.services.accounts import sign_in, users
from server.services.accounts.sign_in import SignInRefused, TooManyAttempts

bp = Blueprint("auth", __name__)

# A browser that has signed in as a user is remembered (a signed list of usernames, no secret) for this long, so
# failures by others behind its address never refuse that user's right password there.
KNOWN_BROWSER_AGE = timedelta(days=90)
_KNOWN_BROWSER_NAMES = 8


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class LanguageForm(FlaskForm):
    """The console language, and the page to return to."""

    # The codes only: base.html draws the switcher itself, with each language named in its own words.
    language = SelectField(_l("Language"), choices=list(LANGUAGES))
    next = HiddenField()


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths, so the login page cannot be used as an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for(home_endpoint())


def _address() -> str:
    # The direct peer; behind a reverse proxy, trusted_proxies in the config makes this the browser's address.
    return request.remote_addr or "unknown"


def _known_browser_cookie() -> str:
    secure = current_app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    return "__Host-gatehouse-browser" if secure else "gatehouse-browser"


def _browser_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="gatehouse known browser")


def _known_usernames() -> list[str]:
    """The usernames this browser has signed in as (lower-cased), from its signed cookie; none if absent or forged."""
    value = request.cookies.get(_known_browser_cookie())
    if not value:
        return []
    try:
        names = _browser_signer().loads(value, max_age=int(KNOWN_BROWSER_AGE.total_seconds()))
    except BadSignature:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _remember_browser(response: BaseResponse, username: str) -> None:
    names = [username.lower()] + [n for n in _known_usernames() if n != username.lower()]
    response.set_cookie(
        _known_browser_cookie(),
        _browser_signer().dumps(names[:_KNOWN_BROWSER_NAMES]),
        max_age=int(KNOWN_BROWSER_AGE.total_seconds()),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Strict",
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the login form and log the user in; repeated failures are slowed down."""
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint()))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data or ""
        try:
            user = sign_in.console_sign_in(
                db.session,
                username,
                form.password.data or "",
                _address(),
                known_browser=username.lower() in _known_usernames(),
            )
        except TooManyAttempts as exc:
            minutes = max(1, (exc.retry_after + 59) // 60)
            flash(_("Too many failed logins. Try again in %(minutes)d minutes.", minutes=minutes), "error")
            return render_template("login.html", form=form), 429, {"Retry-After": str(exc.retry_after)}
        except SignInRefused:
            flash(_("Wrong username or password."), "error")
            return render_template("login.html", form=form), 401
        login_user(user)
        # Flask-Login keeps user.get_id() ('user:epoch'); the session's own id adds a token that logging out
        # deletes on the server, so a copy of this cookie cannot outlive the logout.
        session["_user_id"] = users.start_session(db.session, user)
        db.session.commit()
        response = redirect(_safe_next(request.args.get("next")))
        _remember_browser(response, user.username)
        return response
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """End this session, on the server too (a copy of the cookie stops working)."""
    users.end_session(db.session, session.get("_user_id", ""))
    db.session.commit()
    logout_user()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """End every session of this user, on every browser and device."""
    users.log_out_everywhere(db.session, current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash(_("You have been logged out on every device."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
@login_required
def language() -> ResponseReturnValue:
    """Remember the user's console language."""
    form = LanguageForm()
    if not form.validate_on_submit():
        abort(400, _("Choose one of the offered languages."))
    current_user.language = form.language.data
    db.session.commit()
    return redirect(_safe_next(form.next.data))
