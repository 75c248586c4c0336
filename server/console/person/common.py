"""Console person page: the blueprint, and what its parts share (loading, labels, rendering, answers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
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

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.face.photo import FORMATS as PHOTO_FORMATS
from server.console.person.words import (
    BLOCKER_TEXT,
    FACE_STATE_BADGES,
    FACE_STATE_LABELS,
    gates,
    method_list,
    schedule_texts,
)
from server.extensions import db
from server.models import (
    AccessGroup,
    CommandStatus,
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
from server.services.access.reach import Reach, doors_for
from server.services.access.usual_group import usual_group
from server.services.audit import Actor
from server.services.errors import DomainError
from server.services.face import consent
from server.services.face.consent import FaceState
from server.services.face.consent_rules import is_minor
from server.services.people import history
from server.services.privacy import erasure, privacy
from server.services.reports import timefmt
from server.services.terminals import commands
from server.services.wording.operators import describe
from server.state import state

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
    """A moment in the site's time zone, as 2025-05-03 14:05 (Asia/Shanghai, UTC+8)."""
    if moment is None:
        return "—"
    return timefmt.site_time(moment, person.site.timezone)


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
    if report is None or report.get("person") != person.id:
        report = None
    # A withdrawal is also recorded as a "no" (face_declined_at): it is named as what it was, never "declined".
    withdrawals = sorted(c.withdrawn_at for c in person.consents if c.withdrawn_at is not None)
    withdrawn_at = (
        withdrawals[-1]
        if withdrawals and person.face_declined_at is not None and withdrawals[-1] >= person.face_declined_at
        else None
    )
    shown_state = status.state.value
    if status.state is FaceState.DECLINED and withdrawn_at is not None:
        shown_state = "withdrawn"
    return {
        "face": status,
        "face_state": shown_state,
        "withdrawn_at": withdrawn_at,
        "notice": status.notice if status.notice is not None else privacy.current_notice(db.session, person.site),
        "holdings": holdings,
        "receipts": receipts,
        "receipt_terminals": terminal_names({c.terminal_id for r in receipts for c in r.confirmations}),
        "can_withdraw": bool(person.face_templates) or any(c.withdrawn_at is None for c in person.consents),
        "minor": is_minor(person, utcnow()),
        "face_configured": state().face.configured,
        "face_report": gates(report["figures"], report.get("thresholds", {})) if report else None,
    }


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


def _groups_context(person: Person, reach: Reach) -> dict[str, Any]:
    """The access groups part: theirs, the others to add, and which one the dropdown offers first."""
    site = person.site
    groups = db.session.scalars(
        select(AccessGroup).where(AccessGroup.site_id == site.id).order_by(AccessGroup.name).limit(500)
    ).all()
    member_of = [g.group for g in reach.groups]
    usual = usual_group(db.session, site)
    others = [g for g in groups if g not in member_of]
    return {
        "groups": member_of,
        "other_groups": others,
        # The site's usual group, never the first by name; nothing preselected once they are in it.
        "default_group": usual if usual in others else None,
        "usual_group": usual,
    }


def _history_context(person: Person) -> dict[str, Any]:
    return {
        "history": history.recent_events(db.session, person),
        "events_url": url_for("monitor.events", person=person.pseudonym)
        if "monitor.events" in current_app.view_functions
        else None,
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
    now = utcnow()
    reach = doors_for(db.session, person, now)
    ordered = sorted(
        person.credentials, key=lambda c: (c.status is not CredentialStatus.ACTIVE, -c.created_at.timestamp())
    )
    context: dict[str, Any] = {
        "person": person,
        "site": site,
        "reach": reach,
        "credentials": ordered,
        "credentials_of": {kind.value: [c for c in ordered if c.kind is kind] for kind in CredentialKind},
        "terminals": site.terminals,
        "command": command,
        "command_state": command_view(command) if command is not None else None,
        "errors": errors or {},
        "values": values or {},
        "edit_url": url_for("people.edit", person_id=person.id)
        if "people.edit" in current_app.view_functions
        else None,
        "active": person.status is PersonStatus.ACTIVE,
        **_groups_context(person, reach),
        **_history_context(person),
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


# Every format the face engine decodes, as the file picker's accept list (types and extensions, for older pickers).
_EXTENSIONS = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",), "WEBP": (".webp",)}
PHOTO_ACCEPT = ",".join(
    [f"image/{name.lower()}" for name in PHOTO_FORMATS]
    + [ext for name in PHOTO_FORMATS for ext in _EXTENSIONS.get(name, (f".{name.lower()}",))]
)


def helpers(person: Person) -> dict[str, Any]:
    """What the person templates use to show labels and times."""
    return {
        "when": lambda moment: local_time(person, moment),
        "photo_accept": PHOTO_ACCEPT,
        "blocker_text": BLOCKER_TEXT,
        "face_state_labels": FACE_STATE_LABELS,
        "face_state_badges": FACE_STATE_BADGES,
        "method_list": method_list,
        "schedule_texts": schedule_texts,
        "labels": {
            "kind": KIND_LABELS,
            "status": STATUS_LABELS,
            "credential": CREDENTIAL_LABELS,
            "credential_status": CREDENTIAL_STATUS,
        },
    }
