"""Console: One person's page: credentials, face consent and photo, groups."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from gatehouse_core import app_code
from gatehouse_core.credential_hash import CredentialKind

from ..extensions import db
from ..models import (
    AccessGroup,
    CommandStatus,
    Credential,
    CredentialStatus,
    ErasureReceipt,
    Person,
    PersonKind,
    PersonStatus,
    TemplateHolding,
    Terminal,
    TerminalCommand,
    utcnow,
)
from ..services import access, commands, consent, credentials, erasure, privacy
from ..services.audit import Actor
from ..services.consent_rules import is_minor
from ..services.errors import DomainError
from .error_text import describe
from .roles import MANAGERS, require_role

bp = Blueprint("person", __name__, url_prefix="/people")

KIND_LABELS = {PersonKind.RESIDENT: _l("resident"), PersonKind.STAFF: _l("staff"), PersonKind.VISITOR: _l("visitor")}
STATUS_LABELS = {
    PersonStatus.ACTIVE: _l("active"),
    PersonStatus.MOVED_OUT: _l("moved out"),
    PersonStatus.SUSPENDED: _l("suspended"),
}
CREDENTIAL_LABELS = {
    CredentialKind.CARD: _l("Key card"),
    CredentialKind.ID_DOCUMENT: _l("ID document"),
    CredentialKind.APP_CODE: _l("App code"),
}
CREDENTIAL_STATUS = {CredentialStatus.ACTIVE: _l("active"), CredentialStatus.REVOKED: _l("revoked")}
# A finished capture command's outcome (set by the worker from the terminal's reply) in words.
COMMAND_OUTCOMES = {
    "duplicate_card": _l("This card is already registered to someone at this site; revoke it there first."),
    "credential_taken": _l("This card is already registered to someone at this site; revoke it there first."),
    "bad_uid": _l("The terminal read a card whose number is not valid. Try another card."),
    "bad_card": _l("The terminal read a card whose number is not valid. Try another card."),
    "inactive": _l("Cards can only be added for people who are active at the site."),
    "timeout": _l("No card was presented in time"),
    "expired": _l("No card was presented in time"),
    "superseded": _l("A newer card reading at this terminal replaced this one."),
    "no_person": _l("This person no longer exists."),
    "bad_reply": _l("The terminal gave an answer the server could not use. Try again."),
}
# Receipts erased within this many seconds of the newest one belong to the same withdrawal.
RECEIPT_BATCH_SECONDS = 60


def load_person(person_id: int) -> Person:
    """The person, or a 404 page."""
    person = db.session.get(Person, person_id)
    if person is None:
        abort(404, _("No person with this id."))
    return person


def actor() -> Actor:
    """The logged-in console user, as the services audit them."""
    return Actor.of(current_user._get_current_object())


def local_time(person: Person, moment: datetime | None) -> str:
    """A moment in the site's time zone, as 2025-05-03 14:05."""
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(person.site.timezone)).strftime("%Y-%m-%d %H:%M")


def outcome_text(code: str | None) -> str:
    """A command outcome code in the user's language."""
    label = COMMAND_OUTCOMES.get(code or "")
    return str(label) if label is not None else _("The terminal could not add the card (%(code)s).", code=code)


def latest_receipts(person: Person) -> list[ErasureReceipt]:
    """The receipts of the person's latest erasure (one withdrawal may erase several templates)."""
    receipts = erasure.receipts_of_person(db.session, person.id)[:5]
    if not receipts:
        return []
    newest = receipts[0].erased_on_server_at
    return [r for r in receipts if (newest - r.erased_on_server_at).total_seconds() <= RECEIPT_BATCH_SECONDS]


def terminal_names(terminal_ids: set[int]) -> dict[int, str]:
    """Terminal names by id, in one query."""
    if not terminal_ids:
        return {}
    rows = db.session.execute(select(Terminal.id, Terminal.name).where(Terminal.id.in_(terminal_ids)))
    return {terminal_id: name for terminal_id, name in rows}


def _face_context(person: Person) -> dict[str, Any]:
    from ..app import state

    status = consent.face_status(db.session, person)
    template_ids = [t.id for t in person.face_templates]
    holdings: dict[int, list[str]] = {t: [] for t in template_ids}
    if template_ids:
        rows = db.session.execute(
            select(TemplateHolding.template_id, Terminal.name)
            .join(Terminal, Terminal.id == TemplateHolding.terminal_id)
            .where(TemplateHolding.template_id.in_(template_ids))
            .order_by(Terminal.name)
        )
        for template_id, name in rows:
            holdings[template_id].append(name)
    receipts = latest_receipts(person)
    report = cookie_session.pop("face_report", None)
    return {
        "face": status,
        "notice": status.notice if status.notice is not None else privacy.current_notice(db.session, person.site),
        "holdings": holdings,
        "receipts": receipts,
        "receipt_terminals": terminal_names({c.terminal_id for r in receipts for c in r.confirmations}),
        "can_withdraw": bool(person.face_templates) or any(c.withdrawn_at is None for c in person.consents),
        "minor": is_minor(person, utcnow()),
        "face_configured": state().face.configured,
        "face_report": report["figures"] if report and report.get("person") == person.id else None,
    }


def render_person(
    person: Person,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    **extra: Any,
) -> ResponseReturnValue:
    """The person page, with per-field errors and the user's input when a form was refused."""
    site = person.site
    command = None
    command_id = request.args.get("command", type=int)
    if command_id is not None:
        found = db.session.get(TerminalCommand, command_id)
        command = found if found is not None and found.person_id == person.id else None
    groups = db.session.scalars(
        select(AccessGroup).where(AccessGroup.site_id == site.id).order_by(AccessGroup.name).limit(500)
    ).all()
    member_of = sorted(person.access_groups, key=lambda g: g.name)
    context: dict[str, Any] = {
        "person": person,
        "site": site,
        "credentials": sorted(
            person.credentials, key=lambda c: (c.status is not CredentialStatus.ACTIVE, -c.created_at.timestamp())
        ),
        "terminals": site.terminals,
        "command": command,
        "command_state": command_view(command) if command is not None else None,
        "groups": member_of,
        "other_groups": [g for g in groups if g not in member_of],
        "errors": errors or {},
        "values": values or {},
        "edit_url": url_for("people.edit", person_id=person.id)
        if "people.edit" in current_app.view_functions
        else None,
        "active": person.status is PersonStatus.ACTIVE,
        **_face_context(person),
        **helpers(person),
        **extra,
    }
    return render_template("person/show.html", **context), status


def refused(person: Person, field: str, exc: DomainError, values: dict[str, str] | None = None) -> ResponseReturnValue:
    """Undo the request's changes and show the service's reason next to `field`."""
    db.session.rollback()
    return render_person(person, status=exc.http_status, errors={field: describe(exc)}, values=values)


def back(person: Person, **args: Any) -> Response:
    """Redirect to the person page (after a change, so a reload does not repeat it)."""
    return redirect(url_for("person.show", person_id=person.id, **args))  # type: ignore[return-value]


def helpers(person: Person) -> dict[str, Any]:
    """What the person templates use to show labels and times."""
    return {
        "when": lambda moment: local_time(person, moment),
        "labels": {
            "kind": KIND_LABELS,
            "status": STATUS_LABELS,
            "credential": CREDENTIAL_LABELS,
            "credential_status": CREDENTIAL_STATUS,
        },
    }


# ---- the page ---------------------------------------------------------------------------------------------------


@bp.get("/<int:person_id>")
@require_role(*MANAGERS)
def show(person_id: int) -> ResponseReturnValue:
    """Everything about one person that a manager works with."""
    return render_person(load_person(person_id))


# ---- credentials -----------------------------------------------------------------------------------------------


@bp.post("/<int:person_id>/cards")
@require_role(*MANAGERS)
def add_card(person_id: int) -> ResponseReturnValue:
    """Register a key card by its typed UID."""
    from ..app import state

    person = load_person(person_id)
    uid = request.form.get("uid", "")
    try:
        credentials.add_card(db.session, actor(), state().keys, person, uid)
    except DomainError as exc:
        return refused(person, "uid", exc, {"uid": uid})
    db.session.commit()
    flash(_("Card added."), "success")
    return back(person)


@bp.post("/<int:person_id>/cards/capture")
@require_role(*MANAGERS)
def capture_card(person_id: int) -> ResponseReturnValue:
    """Ask a terminal of the person's site to read the next card presented there."""
    person = load_person(person_id)
    terminal = db.session.get(Terminal, request.form.get("terminal", type=int) or 0)
    if terminal is None:
        return render_person(person, status=422, errors={"terminal": _("Choose a terminal at the person's site.")})
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


def command_view(command: TerminalCommand) -> dict[str, Any]:
    """What a capture command's live region says: its text, whether it is over and how it went."""
    terminal = db.session.get(Terminal, command.terminal_id)
    name = terminal.name if terminal is not None else "?"
    status = commands.shown_status(command)
    if status is CommandStatus.EXPIRED:
        return {"final": True, "ok": False, "text": _("No card was presented in time")}
    if status is CommandStatus.DONE:
        return {"final": True, "ok": True, "text": _("Card added")}
    if status is CommandStatus.FAILED:
        return {"final": True, "ok": False, "text": outcome_text(command.outcome)}
    return {"final": False, "ok": None, "text": _("Present the card at %(terminal)s now", terminal=name)}


@bp.post("/<int:person_id>/id-documents")
@require_role(*MANAGERS)
def add_id_document(person_id: int) -> ResponseReturnValue:
    """Register an ID document by its number."""
    from ..app import state

    person = load_person(person_id)
    number = request.form.get("id_number", "")
    try:
        credentials.add_id_document(db.session, actor(), state().keys, person, number)
    except DomainError as exc:
        return refused(person, "id_number", exc, {"id_number": number})
    db.session.commit()
    flash(_("ID document added."), "success")
    return back(person)


@bp.post("/<int:person_id>/app-code")
@require_role(*MANAGERS)
def reset_app_code(person_id: int) -> ResponseReturnValue:
    """Issue a new app-code seed (revoking the old one) and show it this once, never again."""
    from ..app import state

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


# ---- access groups ---------------------------------------------------------------------------------------------


@bp.post("/<int:person_id>/groups")
@require_role(*MANAGERS)
def add_group(person_id: int) -> ResponseReturnValue:
    """Add the person to an access group of their site."""
    person = load_person(person_id)
    group = db.session.get(AccessGroup, request.form.get("group", type=int) or 0)
    if group is None:
        return render_person(person, status=422, errors={"group": _("Choose an access group.")})
    try:
        access.add_member(db.session, actor(), group, person)
    except DomainError as exc:
        return refused(person, "group", exc)
    db.session.commit()
    flash(_("Added to %(group)s.", group=group.name), "success")
    return back(person)


@bp.post("/<int:person_id>/groups/<int:group_id>/remove")
@require_role(*MANAGERS)
def remove_group(person_id: int, group_id: int) -> ResponseReturnValue:
    """Take the person out of an access group."""
    person = load_person(person_id)
    group = db.session.get(AccessGroup, group_id)
    if group is None:
        abort(404, _("No such access group."))
    access.remove_member(db.session, actor(), group, person)
    db.session.commit()
    flash(_("Removed from %(group)s.", group=group.name), "success")
    return back(person)


# The face part of the page registers its routes on `bp`.
from . import person_face  # noqa: E402, F401
