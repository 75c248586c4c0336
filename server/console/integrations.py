"""Console: Administration → Integrations: API keys for the integration API and webhooks, for managers and admins.

A new key or signing secret is shown once, on the page that answers the form (never in a redirect's URL or the
session), and the page is not cached.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import Site
from server.services.audit import Actor
from server.services.errors import RuleViolation
from server.services.integrations import api_keys, webhooks
from server.services.operations import feed
from server.state import state

bp = Blueprint("integrations", __name__, url_prefix="/integrations")

SCOPE_LABELS: dict[str, Any] = {
    api_keys.EVENTS_READ: _l("Read events"),
    api_keys.ALARMS_READ: _l("Read alarms"),
    api_keys.DOORS_READ: _l("Read door states"),
    api_keys.DOORS_COMMAND: _l("Open doors"),
}
TOPIC_LABELS: dict[str, Any] = {
    "access.granted": _l("Entry granted"),
    "access.denied": _l("Entry refused"),
    "access.alarm": _l("Access alarm"),
    "alarm.raised": _l("Alarm raised"),
    "alarm.acknowledged": _l("Alarm acknowledged"),
    "alarm.resolved": _l("Alarm resolved"),
    "door.state": _l("Door state changed"),
}


def _site_choices() -> list[tuple[int, str]]:
    sites = db.session.scalars(select(Site).order_by(Site.name))
    return [(0, str(_l("Every site"))), *((site.id, site.name) for site in sites)]


class KeyForm(FlaskForm):
    """A new API key: who uses it, what it may do, and where."""

    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(message=_l("Name the key after the system that will use it.")),
            Length(max=api_keys.NAME_MAX),
        ],
    )
    scopes = SelectMultipleField(_l("Allowed"))
    site = SelectField(_l("Site"), coerce=int)


class WebhookForm(FlaskForm):
    """A new webhook: where to send and which events."""

    name = StringField(
        _l("Name"), validators=[DataRequired(message=_l("Name the webhook.")), Length(max=webhooks.NAME_MAX)]
    )
    url = StringField(
        _l("Receiver URL"),
        validators=[DataRequired(message=_l("Give the receiver's URL.")), Length(max=webhooks.URL_MAX)],
    )
    topics = SelectMultipleField(_l("Events"))
    site = SelectField(_l("Site"), coerce=int)


_ERRORS: dict[str, Any] = {
    "no_scope": _l("Tick at least one thing the key may do."),
    "no_topic": _l("Tick at least one kind of event to send."),
    "bad_url": _l("Give a URL that starts with https:// and names a host."),
    "url_credentials": _l("Leave the user name and password out of the URL; receivers check the signature instead."),
    "https_required": _l("Use https:// (plain http only to this machine)."),
}


def _actor() -> Actor:
    return Actor.of(current_user._get_current_object())


def _forms(key_form: KeyForm | None = None, hook_form: WebhookForm | None = None) -> tuple[KeyForm, WebhookForm]:
    key_form = key_form or KeyForm(prefix="key")
    hook_form = hook_form or WebhookForm(prefix="hook")
    key_form.site.choices = hook_form.site.choices = _site_choices()
    key_form.scopes.choices = [(scope, str(label)) for scope, label in SCOPE_LABELS.items()]
    hook_form.topics.choices = [(topic, str(TOPIC_LABELS.get(topic, topic))) for topic in feed.TOPICS]
    return key_form, hook_form


def _index(key_form: KeyForm | None = None, hook_form: WebhookForm | None = None, status: int = 200) -> Any:
    key_form, hook_form = _forms(key_form, hook_form)
    sites = {site.id: site.name for site in db.session.scalars(select(Site))}
    return (
        render_template(
            "integrations/index.html",
            keys=api_keys.list_keys(db.session),
            hooks=webhooks.summaries(db.session),
            key_form=key_form,
            hook_form=hook_form,
            sites=sites,
            scope_labels=SCOPE_LABELS,
            topic_labels=TOPIC_LABELS,
        ),
        status,
    )


@bp.get("")
@require_role(*MANAGERS)
def index() -> ResponseReturnValue:
    """API keys and webhooks, with the forms that add them."""
    return _index()


@bp.post("/keys")
@require_role(*MANAGERS)
def create_key() -> ResponseReturnValue:
    """Create an API key and show it once."""
    form, _hook = _forms(KeyForm(prefix="key"))
    if form.validate_on_submit():
        try:
            key, full = api_keys.create(
                db.session, _actor(), form.name.data or "", form.scopes.data or [], form.site.data or None
            )
        except RuleViolation as exc:
            db.session.rollback()
            target = form.scopes if "scope" in exc.code else form.name
            target.errors = [*target.errors, str(_ERRORS.get(exc.code, exc.message))]
        else:
            db.session.commit()
            return render_template("integrations/shown_once.html", kind="key", name=key.name, secret=full)
    return _index(key_form=form, status=400)


@bp.post("/keys/<int:key_id>/revoke")
@require_role(*MANAGERS)
def revoke_key(key_id: int) -> ResponseReturnValue:
    """Revoke a key: its next request is refused."""
    key = api_keys.revoke(db.session, _actor(), key_id)
    db.session.commit()
    flash(_("Revoked the API key %(name)s.", name=key.name), "success")
    return redirect(url_for(".index"))


@bp.post("/webhooks")
@require_role(*MANAGERS)
def create_webhook() -> ResponseReturnValue:
    """Register a webhook and show its signing secret once."""
    _key, form = _forms(hook_form=WebhookForm(prefix="hook"))
    if form.validate_on_submit():
        try:
            hook, secret = webhooks.register(
                db.session,
                _actor(),
                state().keys,
                form.name.data or "",
                form.url.data or "",
                form.topics.data or [],
                form.site.data or None,
                require_https=state().config.mode == "production",
            )
        except RuleViolation as exc:
            db.session.rollback()
            target = form.topics if "topic" in exc.code else form.url if "url" in exc.code else form.name
            if exc.code == "https_required":
                target = form.url
            target.errors = [*target.errors, str(_ERRORS.get(exc.code, exc.message))]
        else:
            db.session.commit()
            return render_template("integrations/shown_once.html", kind="webhook", name=hook.name, secret=secret)
    return _index(hook_form=form, status=400)


@bp.post("/webhooks/<int:webhook_id>/active")
@require_role(*MANAGERS)
def toggle_webhook(webhook_id: int) -> ResponseReturnValue:
    """Turn a webhook off (nothing is queued or sent) or on again."""
    hook = webhooks.get(db.session, webhook_id)
    webhooks.set_active(db.session, _actor(), hook.id, not hook.active)
    db.session.commit()
    if hook.active:
        flash(_("Turned on the webhook %(name)s.", name=hook.name), "success")
    else:
        flash(_("Turned off the webhook %(name)s.", name=hook.name), "success")
    return redirect(url_for(".index"))


@bp.post("/webhooks/<int:webhook_id>/delete")
@require_role(*MANAGERS)
def delete_webhook(webhook_id: int) -> ResponseReturnValue:
    """Remove a webhook and its waiting deliveries."""
    hook = webhooks.get(db.session, webhook_id)
    name = hook.name
    webhooks.delete(db.session, _actor(), hook.id)
    db.session.commit()
    flash(_("Removed the webhook %(name)s.", name=name), "success")
    return redirect(url_for(".index"))
