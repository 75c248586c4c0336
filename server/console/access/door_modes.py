"""Console: lockdown and emergency release of a door, a door group or a site; lifting them; unlock schedules.

Guards reach the door-modes page (they start lockdowns and releases); the roles each action needs are the
service's (server/services/access/door_modes.py), which also refuses them. While any override is live, every
console page shows a banner (the context processor below, rendered by base.html).
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, RadioField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from gatehouse_core.schedule import parse_hhmm
from server.console.access.common import WEEKDAYS, actor, all_sites, bp, site_or_404
from server.console.forms import field_errors
from server.console.roles import ANY_ROLE, MANAGERS, require_role
from server.extensions import db
from server.models import AccessGroup, Door, OverrideMode
from server.services.access import door_modes
from server.services.errors import DomainError

REASON_NEEDED = _l("Give a reason; it is kept in the audit log.")
MODE_LABELS = {OverrideMode.LOCKDOWN: _l("Lockdown"), OverrideMode.EMERGENCY_RELEASE: _l("Emergency release")}


class StartForm(FlaskForm):
    """Start a lockdown or emergency release: a site, one door, a door group or all of it, and why."""

    site_id = IntegerField(validators=[InputRequired()])
    mode = RadioField(choices=[m.value for m in OverrideMode], validators=[InputRequired()])
    scope = RadioField(choices=["door", "group", "site"], default="site")
    door_id = IntegerField(validators=[Optional()])
    group_id = IntegerField(validators=[Optional()])
    reason = TextAreaField(validators=[InputRequired(REASON_NEEDED), Length(max=door_modes.MAX_REASON)])


class LiftForm(FlaskForm):
    """Lift a live override, and why."""

    reason = TextAreaField(validators=[InputRequired(REASON_NEEDED), Length(max=door_modes.MAX_REASON)])


class UnlockScheduleForm(FlaskForm):
    """A door's unlock windows (one 'HH:MM-HH:MM' field per weekday, several windows comma-separated)."""

    first_person_in = BooleanField()
    open_on_holidays = BooleanField()


def _refusal(exc: DomainError) -> str:
    known = {
        "reason_missing": str(REASON_NEEDED),
        "forbidden": _("Your role does not allow this."),
        "no_door": _("Choose a door of this site."),
        "no_override": _("This lockdown or emergency release has already been lifted."),
        "bad_window": _("Write each window as 09:00-17:00, several separated by commas, the start before the end."),
    }
    return known.get(exc.code, exc.message)


@bp.app_context_processor
def live_override_banner() -> dict[str, Any]:
    """`door_overrides`: the live lockdowns and emergency releases, for the banner on every console page."""
    if not current_user.is_authenticated:
        return {"door_overrides": []}
    return {"door_overrides": door_modes.live_overrides(db.session), "override_labels": MODE_LABELS}


def _render(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    sites = all_sites()
    groups = list(db.session.scalars(select(AccessGroup).order_by(AccessGroup.name)))
    role = current_user.role
    return (
        render_template(
            "access/door_modes.html",
            sites=sites,
            groups=groups,
            live=door_modes.live_overrides(db.session),
            labels=MODE_LABELS,
            may_start={m: door_modes.may_start(role, m) for m in OverrideMode},
            may_lift={m: door_modes.may_lift(role, m) for m in OverrideMode},
            errors=errors or {},
            values=request.form if request.method == "POST" else {},
        ),
        status,
    )


@bp.get("/door-modes")
@require_role(*ANY_ROLE)
def door_modes_page() -> ResponseReturnValue:
    """Live lockdowns and emergency releases, and forms to start and lift them."""
    return _render()


@bp.post("/door-modes")
@require_role(*ANY_ROLE)
def start_door_mode() -> ResponseReturnValue:
    """Start a lockdown or emergency release."""
    form = StartForm()
    if not form.validate_on_submit():
        return _render(field_errors(form), 422)
    site = site_or_404(form.site_id.data)
    door_ids = [form.door_id.data] if form.scope.data == "door" and form.door_id.data else None
    group_id = form.group_id.data if form.scope.data == "group" else None
    if form.scope.data == "door" and door_ids is None:
        return _render({"door_id": _("Choose a door of this site.")}, 422)
    if form.scope.data == "group" and group_id is None:
        return _render({"group_id": _("Choose a door group of this site.")}, 422)
    mode = OverrideMode(form.mode.data)
    start = door_modes.start_lockdown if mode is OverrideMode.LOCKDOWN else door_modes.start_emergency_release
    try:
        start(db.session, actor(), site_id=site.id, door_ids=door_ids, group_id=group_id, reason=form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        field = "reason" if exc.code.startswith("reason") else "scope"
        return _render({field: _refusal(exc)}, exc.http_status)
    db.session.commit()
    flash(_("%(mode)s started at %(site)s.", mode=MODE_LABELS[mode], site=site.name), "success")
    return redirect(url_for(".door_modes_page"))


@bp.post("/door-modes/<batch>/lift")
@require_role(*ANY_ROLE)
def lift_door_mode(batch: str) -> ResponseReturnValue:
    """Lift a live lockdown or emergency release."""
    form = LiftForm()
    if not form.validate_on_submit():
        return _render({f"lift-{batch}": str(REASON_NEEDED)}, 422)
    try:
        door_modes.lift(db.session, actor(), batch, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        return _render({f"lift-{batch}": _refusal(exc)}, exc.http_status)
    db.session.commit()
    flash(_("Lifted; the doors return to normal."), "success")
    return redirect(url_for(".door_modes_page"))


def _windows_text(raw: str | None) -> dict[int, str]:
    by_day: dict[int, list[str]] = {}
    for weekday, start, end in json.loads(raw or "[]"):
        by_day.setdefault(weekday, []).append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
    return {day: ", ".join(parts) for day, parts in by_day.items()}


def _parse_windows(texts: dict[int, str]) -> list[tuple[int, int, int]]:
    windows = []
    for day, text in texts.items():
        for part in filter(None, (p.strip() for p in text.split(","))):
            start, sep, end = part.partition("-")
            if not sep:
                raise ValueError(part)
            windows.append((day, parse_hhmm(start), parse_hhmm(end)))
    return windows


@bp.route("/doors/<int:door_id>/unlock-schedule", methods=["GET", "POST"])
@require_role(*MANAGERS)
def unlock_schedule(door_id: int) -> ResponseReturnValue:
    """When a door stands unlocked for everyone (site time), with first-person-in and holidays."""
    door = db.session.get(Door, door_id)
    if door is None:
        abort(404, _("No door with this id."))
    row = door_modes.unlock_schedule(db.session, door.id)
    form = UnlockScheduleForm(
        data={
            "first_person_in": row.first_person_in if row else False,
            "open_on_holidays": row.open_on_holidays if row else False,
        }
    )
    texts = _windows_text(row.windows if row else None)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        texts = {day: request.form.get(f"day-{day}", "").strip() for day in range(7)}
        if form.validate_on_submit():
            try:
                door_modes.set_unlock_schedule(
                    db.session,
                    actor(),
                    door,
                    _parse_windows(texts),
                    form.first_person_in.data,
                    form.open_on_holidays.data,
                )
                db.session.commit()
                flash(_("Unlock schedule of %(name)s saved.", name=door.name), "success")
                return redirect(url_for(".edit_door", door_id=door.id))
            except ValueError:
                db.session.rollback()
                errors["windows"] = _refusal(DomainError("", code="bad_window"))
            except DomainError as exc:
                db.session.rollback()
                errors["windows"] = _refusal(exc)
        else:
            errors = field_errors(form)
        status = 422
    return (
        render_template(
            "access/unlock_schedule.html", door=door, form=form, texts=texts, errors=errors, weekdays=WEEKDAYS
        ),
        status,
    )
