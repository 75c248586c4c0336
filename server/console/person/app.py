"""Console: the phone-app part of a person's page: turn the residents' app on or off, sign every device out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, flash
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo

from server.console.forms import field_errors
from server.console.person.common import actor, back, load_person, refused, render_person
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import Person, PersonKind, PersonStatus, ResidentAccount
from server.services.accounts import app_accounts, app_sessions
from server.services.errors import DomainError

bp = Blueprint("person_app", __name__, url_prefix="/people")

# Which form field a refusal of enable_account belongs next to; the rest go above the section's forms.
ENABLE_FIELDS = {
    "bad_username": "app_username",
    "username_taken": "app_username",
    "phone_taken": "app_username",
    "no_login": "app_username",
    "weak_password": "app_password",
}
# Refusals that belong to no single field (visitor, inactive, no_account) are shown at the top of the section.
GENERAL_FIELD = "app_account"


def _stripped(value: str | None) -> str:
    return value.strip() if value else ""


class EnableForm(FlaskForm):
    """Turning the app on: an optional username, and an optional first password typed twice (never shown again)."""

    app_username = StringField(default="", filters=[_stripped])
    app_password = PasswordField(default="")
    app_password_repeat = PasswordField(
        default="",
        validators=[
            EqualTo("app_password", _l("The two passwords differ; type the same password in both fields.")),
        ],
    )


@dataclass(frozen=True)
class PhoneApp:
    """What the person page shows about the app: never the password hash, only whether there is one."""

    offered: bool  # visitors get passes, not the app
    active: bool  # only people active at the site can have it turned on
    account: ResidentAccount | None
    devices: int
    last_used: datetime | None

    @property
    def on(self) -> bool:
        """Whether the app is turned on for the person."""
        return self.account is not None and self.account.enabled

    @property
    def can_sign_in(self) -> bool:
        """Whether the account has a way in: a password, or the phone on file for a one-time code."""
        account = self.account
        return account is not None and (account.password_hash is not None or account.phone_key is not None)


@bp.app_template_global("phone_app")
def phone_app(person: Person) -> PhoneApp:
    """The phone-app facts of one person, for the person page's partial."""
    account = app_accounts.account_of(db.session, person)
    live = app_sessions.live_sessions(db.session, account) if account is not None and account.enabled else []
    return PhoneApp(
        offered=person.kind is not PersonKind.VISITOR,
        active=person.status is PersonStatus.ACTIVE,
        account=account,
        devices=len(live),
        last_used=live[0].last_used_at if live else None,
    )


@bp.post("/<int:person_id>/app/enable")
@require_role(*MANAGERS)
def enable(person_id: int) -> ResponseReturnValue:
    """Turn the app on, with an optional username and an optional first password (never shown again)."""
    person = load_person(person_id)
    form = EnableForm()
    values = {"app_username": form.app_username.data}
    if not form.validate_on_submit():
        return render_person(person, status=422, errors=field_errors(form), values=values)
    username, password = form.app_username.data or None, form.app_password.data or None
    try:
        app_accounts.enable_account(db.session, actor(), person, username=username, password=password)
    except DomainError as exc:
        return refused(person, ENABLE_FIELDS.get(exc.code, GENERAL_FIELD), exc, values)
    db.session.commit()
    flash(_("The phone app is on for %(name)s.", name=person.full_name), "success")
    return back(person)


@bp.post("/<int:person_id>/app/disable")
@require_role(*MANAGERS)
def disable(person_id: int) -> ResponseReturnValue:
    """Turn the app off: every device is signed out at once; the account is kept for turning it back on."""
    person = load_person(person_id)
    try:
        ended = app_accounts.disable_account(db.session, actor(), person)
    except DomainError as exc:
        return refused(person, GENERAL_FIELD, exc)
    db.session.commit()
    flash(
        ngettext(
            "The phone app is off for %(name)s; %(num)d device was signed out.",
            "The phone app is off for %(name)s; %(num)d devices were signed out.",
            ended,
            name=person.full_name,
        ),
        "success",
    )
    return back(person)


@bp.post("/<int:person_id>/app/sign-out")
@require_role(*MANAGERS)
def sign_out(person_id: int) -> ResponseReturnValue:
    """Sign every device out (a lost phone); the app stays on and the resident signs in again."""
    person = load_person(person_id)
    try:
        ended = app_accounts.sign_out_everywhere(db.session, actor(), person)
    except DomainError as exc:
        return refused(person, GENERAL_FIELD, exc)
    db.session.commit()
    flash(
        ngettext(
            "%(num)d device was signed out of the phone app.",
            "%(num)d devices were signed out of the phone app.",
            ended,
        ),
        "success",
    )
    return back(person)
