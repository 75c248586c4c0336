"""Console person page: key cards (typed or read at a terminal), ID documents, app codes, revoking."""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    abort,
    flash,
    make_response,
    render_template,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import InputRequired

from gatehouse_core import app_code
from server.console.forms import field_errors
from server.console.person.common import (
    CREDENTIAL_LABELS,
    actor,
    back,
    bp,
    command_view,
    load_person,
    refused,
    render_person,
)
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import (
    Credential,
    Person,
    Terminal,
    TerminalCommand,
)
from server.services.errors import DomainError
from server.services.people import credentials
from server.services.terminals import commands
from server.state import state

CHOOSE_TERMINAL = _l("Choose a terminal at the person's site.")


class CardForm(FlaskForm):
    """A key card's UID as typed (the credentials service checks it)."""

    uid = StringField(default="")


class CaptureForm(FlaskForm):
    """The terminal that is to read the next card presented."""

    terminal = IntegerField(validators=[InputRequired(CHOOSE_TERMINAL)], invalid_value_message=CHOOSE_TERMINAL)


class IdDocumentForm(FlaskForm):
    """An ID document's number as typed (the credentials service checks it)."""

    id_number = StringField(default="")


def _add_typed(
    person_id: int,
    form: CardForm | IdDocumentForm,
    field: str,
    add: Callable[[Person, str], object],
    done: str,
) -> ResponseReturnValue:
    """Register a credential typed into `field` of `form` through the service call `add`; re-render on refusal."""
    person = load_person(person_id)
    value = getattr(form, field).data
    values = {field: value}
    if not form.validate_on_submit():
        return render_person(person, status=422, errors=field_errors(form), values=values)
    try:
        add(person, value)
    except DomainError as exc:
        return refused(person, field, exc, values)
    db.session.commit()
    flash(done, "success")
    return back(person)


@bp.post("/<int:person_id>/cards")
@require_role(*MANAGERS)
def add_card(person_id: int) -> ResponseReturnValue:
    """Register a key card by its typed UID."""
    return _add_typed(
        person_id,
        CardForm(),
        "uid",
        lambda person, uid: credentials.add_card(db.session, actor(), state().keys, person, uid),
        _("Card added."),
    )


@bp.post("/<int:person_id>/cards/capture")
@require_role(*MANAGERS)
def capture_card(person_id: int) -> ResponseReturnValue:
    """Ask a terminal of the person's site to read the next card presented there."""
    person = load_person(person_id)
    form = CaptureForm()
    terminal = db.session.get(Terminal, form.terminal.data) if form.validate_on_submit() else None
    if terminal is None:  # none chosen, or one that no longer exists
        return render_person(person, status=422, errors={"terminal": str(CHOOSE_TERMINAL)})
    # commands.capture_card refuses a terminal of another site (other_site) and an inactive person.
    try:
        command = commands.capture_card(db.session, actor(), terminal, person)
    except DomainError as exc:
        return refused(person, "terminal", exc)
    db.session.commit()
    return back(person, command=command.id)


@bp.get("/<int:person_id>/commands/<int:command_id>")
@require_role(*MANAGERS)
def command_status(person_id: int, command_id: int) -> ResponseReturnValue:
    """Fragment: where a card capture stands (polled by the live region until it carries data-final)."""
    person = load_person(person_id)
    command = db.session.get(TerminalCommand, command_id)
    if command is None or command.person_id != person.id:
        abort(404, _("No such card reading for this person."))
    return render_template("person/_command.html", command=command, state=command_view(command), person=person)


@bp.post("/<int:person_id>/id-documents")
@require_role(*MANAGERS)
def add_id_document(person_id: int) -> ResponseReturnValue:
    """Register an ID document by its number."""
    return _add_typed(
        person_id,
        IdDocumentForm(),
        "id_number",
        lambda person, number: credentials.add_id_document(db.session, actor(), state().keys, person, number),
        _("ID document added."),
    )


@bp.post("/<int:person_id>/app-code")
@require_role(*MANAGERS)
def reset_app_code(person_id: int) -> ResponseReturnValue:
    """Issue a new app-code seed (revoking the old one) and show it this once, never again."""

    person = load_person(person_id)
    try:
        _credential, seed = credentials.issue_app_code_secret(db.session, actor(), state().keys, person)
    except DomainError as exc:
        return refused(person, "app_code", exc)
    db.session.commit()
    secret = app_code.totp(seed).secret
    uri = app_code.provisioning_uri(seed, f"{person.site.code}:{person.pseudonym}")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    response = make_response(render_template("person/app_code.html", person=person, secret=grouped, uri=uri))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:person_id>/credentials/<int:credential_id>/revoke")
@require_role(*MANAGERS)
def revoke(person_id: int, credential_id: int) -> ResponseReturnValue:
    """Revoke one of the person's credentials."""
    person = load_person(person_id)
    credential = db.session.get(Credential, credential_id)
    if credential is None or credential.person_id != person.id:
        abort(404, _("No such credential for this person."))
    credentials.revoke(db.session, actor(), credential)
    db.session.commit()
    flash(_("%(kind)s revoked.", kind=CREDENTIAL_LABELS[credential.kind]), "success")
    return back(person)
