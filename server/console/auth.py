"""Console login, logout (here or everywhere) and the user's language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from server.console.i18n import LANGUAGES
from server.extensions import db
from server.services import audit
from server.services.accounts import sign_in
from server.services.accounts.sign_in import SignInRefused, TooManyAttempts
from server.services.audit import Actor

bp = Blueprint("auth", __name__)


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
    return url_for("views.dashboard")


def _address() -> str:
    # The direct peer; behind a reverse proxy, deployments configure ProxyFix so this is the client.
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the login form and log the user in; repeated failures are slowed down."""
    if current_user.is_authenticated:
        return redirect(url_for("views.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = sign_in.console_sign_in(db.session, form.username.data or "", form.password.data or "", _address())
        except TooManyAttempts as exc:
            minutes = max(1, (exc.retry_after + 59) // 60)
            flash(_("Too many failed logins. Try again in %(minutes)d minutes.", minutes=minutes), "error")
            return render_template("login.html", form=form), 429, {"Retry-After": str(exc.retry_after)}
        except SignInRefused:
            flash(_("Wrong username or password."), "error")
            return render_template("login.html", form=form), 401
        login_user(user)
        db.session.commit()
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """End this session."""
    logout_user()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """End every session of this user, on every browser and device."""
    user = current_user._get_current_object()
    user.session_epoch += 1
    audit.record(db.session, Actor.of(user), "user.logout_everywhere", "console_user", user.id)
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
