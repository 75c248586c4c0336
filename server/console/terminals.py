"""Console: Terminals: status, sync lag, re-sync and remote door opening."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from server.console.roles import ANY_ROLE, MANAGERS, require_role
from server.extensions import db
from server.models import CommandOp, CommandStatus, Terminal, TerminalCommand, TerminalStatus
from server.services.audit import Actor
from server.services.errors import NotFound, RuleViolation
from server.services.reports import dashboard, event_log
from server.services.terminals import commands

bp = Blueprint("terminals", __name__, url_prefix="/terminals")

STATUS_LABELS: dict[TerminalStatus, Any] = {
    TerminalStatus.ONLINE: _l("Online"),
    TerminalStatus.OFFLINE: _l("Offline"),
    TerminalStatus.UNKNOWN: _l("Never seen"),
}
OP_LABELS: dict[CommandOp, Any] = {
    CommandOp.OPEN_DOOR: _l("Open door"),
    CommandOp.RESYNC: _l("Re-sync"),
    CommandOp.CAPTURE_CARD: _l("Capture card"),
}
COMMAND_STATUS_LABELS: dict[CommandStatus, Any] = {
    CommandStatus.PENDING: _l("Waiting to be sent"),
    CommandStatus.SENT: _l("Sent, waiting for the terminal"),
    CommandStatus.DONE: _l("Done"),
    CommandStatus.FAILED: _l("Failed"),
    CommandStatus.EXPIRED: _l("Expired: the terminal did not answer in time"),
}
# Outcome codes terminals and the server record on a command; an unknown code is shown as it is.
OUTCOME_LABELS: dict[str, Any] = {
    "opened": _l("the door was opened"),
    "no_such_door": _l("the terminal does not know this door; re-sync it"),
    "resyncing": _l("the terminal is fetching its roster"),
    "enrolled": _l("the card was enrolled"),
    "duplicate_card": _l("this card already belongs to someone"),
    "bad_uid": _l("the card could not be read"),
    "timeout": _l("no card was presented in time"),
    "superseded": _l("a newer request replaced this one"),
    "expired": _l("no answer in time; check that the terminal is online"),
    "bad_reply": _l("the terminal gave an answer that makes no sense"),
}
_ERRORS: dict[str, Any] = {
    "door_not_served": _l("This terminal does not serve that door. Choose one of the doors listed."),
    "reason_required": _l("Say why the door is being opened."),
    "reason_too_long": _l("Keep the reason under 200 characters."),
}


def status_label(status: TerminalStatus) -> str:
    """A terminal's availability in the user's language."""
    return str(STATUS_LABELS.get(status, status.value))


def op_label(op: CommandOp) -> str:
    """A command's kind in the user's language."""
    return str(OP_LABELS.get(op, op.value))


def command_status_label(status: CommandStatus) -> str:
    """A command's status in the user's language."""
    return str(COMMAND_STATUS_LABELS.get(status, status.value))


def outcome_label(outcome: str | None) -> str:
    """A command's outcome code in the user's language (the code itself if unknown)."""
    if not outcome:
        return ""
    label = OUTCOME_LABELS.get(outcome)
    return str(label) if label is not None else outcome


for _helper in (status_label, op_label, command_status_label, outcome_label):
    bp.add_app_template_global(_helper)


class OpenDoorForm(FlaskForm):
    """Open one of the terminal's doors once, saying why."""

    door = SelectField(_l("Door"), coerce=int, validate_choice=False)
    reason = StringField(
        _l("Reason"),
        validators=[
            DataRequired(message=_l("Say why the door is being opened.")),
            Length(max=commands.REASON_MAX, message=_l("Keep the reason under 200 characters.")),
        ],
    )


def _actor() -> Actor:
    return Actor.of(current_user._get_current_object())


def _terminal(terminal_id: int) -> Terminal:
    try:
        return commands.get_terminal(db.session, terminal_id)
    except NotFound:
        abort(404, _("No terminal with this id. It may have been removed."))


def _open_form(terminal: Terminal) -> OpenDoorForm:
    form = OpenDoorForm()
    form.door.choices = [(door.id, door.name) for door in sorted(terminal.doors, key=lambda d: d.name)]
    return form


def _show(terminal: Terminal, form: OpenDoorForm, status: int = 200) -> ResponseReturnValue:
    recent = commands.recent_commands(db.session, terminal)
    shown: TerminalCommand | None = None
    wanted = request.args.get("command", type=int)
    if wanted is not None:
        shown = next((c for c in recent if c.id == wanted), None)
        if shown is None:
            try:
                found = commands.get_command(db.session, wanted)
            except NotFound:
                found = None
            shown = found if found is not None and found.terminal_id == terminal.id else None
    return (
        render_template(
            "terminals/show.html",
            terminal=terminal,
            lag=terminal.lag,
            form=form,
            can_resync=current_user.role in MANAGERS,
            commands=recent,
            door_names=commands.door_names(db.session, [*recent, *([shown] if shown else [])]),
            shown_status=commands.shown_status,
            final=commands.FINAL,
            shown=shown,
            events=event_log.recent_for_terminal(db.session, terminal),
        ),
        status,
    )


@bp.get("")
@require_role(*ANY_ROLE)
def index() -> ResponseReturnValue:
    """Every terminal: availability, versions, sync lag and last acknowledgement."""
    return render_template("terminals/index.html", lines=dashboard.terminal_lines(db.session))


@bp.get("/<int:terminal_id>")
@require_role(*ANY_ROLE)
def show(terminal_id: int) -> ResponseReturnValue:
    """One terminal: its details, actions, recent commands and recent events."""
    terminal = _terminal(terminal_id)
    return _show(terminal, _open_form(terminal))


@bp.post("/<int:terminal_id>/open")
@require_role(*ANY_ROLE)
def open_door(terminal_id: int) -> ResponseReturnValue:
    """Open one of the terminal's doors once; the reason goes into the audit log."""
    terminal = _terminal(terminal_id)
    form = _open_form(terminal)
    if form.validate_on_submit():
        try:
            command = commands.open_door_with_reason(
                db.session, _actor(), terminal, form.door.data or 0, form.reason.data or ""
            )
        except RuleViolation as exc:
            db.session.rollback()
            target = form.reason if exc.code.startswith("reason") else form.door
            target.errors = [*target.errors, str(_ERRORS.get(exc.code, exc.message))]
        else:
            door = next((d.name for d in terminal.doors if d.id == command.door_id), "")
            db.session.commit()
            flash(_("Asked %(terminal)s to open %(door)s.", terminal=terminal.name, door=door), "success")
            return redirect(url_for(".show", terminal_id=terminal.id, command=command.id))
    return _show(terminal, form, 400)


@bp.post("/<int:terminal_id>/resync")
@require_role(*MANAGERS)
def resync(terminal_id: int) -> ResponseReturnValue:
    """Ask the terminal to compare its whole roster with the server's."""
    terminal = _terminal(terminal_id)
    command = commands.request_resync(db.session, _actor(), terminal)
    db.session.commit()
    flash(_("Asked %(terminal)s to re-sync its roster.", terminal=terminal.name), "success")
    return redirect(url_for(".show", terminal_id=terminal.id, command=command.id))


@bp.get("/commands/<int:command_id>")
@require_role(*ANY_ROLE)
def command_status(command_id: int) -> ResponseReturnValue:
    """A command's status as an HTML fragment (polled by the page; final states carry data-final)."""
    try:
        command = commands.get_command(db.session, command_id)
    except NotFound:
        abort(404, _("No such command."))
    return render_template(
        "terminals/_command.html",
        command=command,
        status=commands.shown_status(command),
        final=commands.FINAL,
        door_names=commands.door_names(db.session, [command]),
    )
