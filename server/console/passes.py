"""Console: Visitor passes: list and revoke."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, Field, HiddenField, StringField
from wtforms.validators import AnyOf, Optional

from server.console.forms import field_errors
from server.console.roles import ANY_ROLE, MANAGERS, require_role
from server.extensions import db
from server.models import PassStatus, Site, VisitorPass
from server.services.audit import Actor
from server.services.errors import DomainError
from server.services.reports import timefmt
from server.services.visitors import passes
from server.services.visitors.passes import PassFilter
from server.services.wording.operators import describe

bp = Blueprint("passes", __name__, url_prefix="/passes")

STATUS_LABELS = {
    PassStatus.ACTIVE: _l("active"),
    PassStatus.USED_UP: _l("used up"),
    PassStatus.EXPIRED: _l("expired"),
    PassStatus.REVOKED: _l("revoked"),
}


def status_label(status: PassStatus) -> str:
    """A pass status in the user's language."""
    return str(STATUS_LABELS.get(status, status.value))


_CHOOSE_SITE = _l("Choose one of the listed sites.")
_DATE_LIKE = _l("Enter a date like 2026-05-01.")


def _host(value: str | None) -> str:
    return value.strip()[:200] if value else ""


def _whole_number(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


class PassFilterForm(FlaskForm):
    """The list's filters, read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    # What is no number at all is no site filter (the select offers only numbers); an unknown site is refused below.
    site = StringField(filters=[_whole_number])
    # Only an empty value means any status; anything else, blanks included, must name one.
    status = StringField(
        validators=[
            Optional(strip_whitespace=False),
            AnyOf([s.value for s in PassStatus], _l("Choose one of the listed statuses.")),
        ]
    )
    host = StringField(filters=[_host])
    first_day = DateField(name="from", validators=[Optional()], invalid_value_message=_DATE_LIKE)
    last_day = DateField(name="to", validators=[Optional()], invalid_value_message=_DATE_LIKE)


class RevokeForm(FlaskForm):
    """Revoking a pass, and the list page (with its filters) to go back to."""

    next = HiddenField(default="")


def _filters(sites: dict[int, Site]) -> tuple[PassFilter, dict[str, str]]:
    """The list's filters from the query string; unusable ones are ignored and explained."""
    form = PassFilterForm(request.args)
    form.validate()
    if form.site.data is not None and form.site.data not in sites:
        form.site.errors.append(_CHOOSE_SITE)
    for day in (form.first_day, form.last_day):
        if day.data is not None and not day.errors:
            try:
                passes.check_filter_day(day.data)
            except DomainError as exc:
                day.errors.append(describe(exc))
    first, last = _usable(form.first_day), _usable(form.last_day)
    if first is not None and last is not None and last < first:
        form.last_day.errors.append(_("End the date range on or after its first day."))
    status = _usable(form.status)
    flt = PassFilter(
        site_id=_usable(form.site),
        status=PassStatus(status) if status else None,
        host=form.host.data,
        first_day=_usable(form.first_day),
        last_day=_usable(form.last_day),
    )
    return flt, field_errors(form)


def _usable(field: Field) -> Any:
    """A filter's value, or None when it was refused (a refused filter is ignored, and explained)."""
    return None if field.errors else field.data


def window_text(visitor_pass: VisitorPass, site: Site) -> str:
    """A pass's window in its site's time zone: '2026-05-03 14:00\u201318:00 (Asia/Shanghai, UTC+8)', or across days."""
    return timefmt.site_window(visitor_pass.valid_from, visitor_pass.valid_until, site.timezone)


def _person_link(person_id: int) -> str | None:
    if "person.show" not in current_app.view_functions or current_user.role not in MANAGERS:
        return None
    return url_for("person.show", person_id=person_id)


@bp.get("")
@require_role(*ANY_ROLE)
def index() -> ResponseReturnValue:
    """Visitor passes, newest first, filtered by site, status, host and dates; 50 a page."""
    sites = {s.id: s for s in db.session.scalars(select(Site).order_by(Site.name, Site.id))}
    flt, errors = _filters(sites)
    page = passes.list_passes(db.session, flt, before=request.args.get("before", type=int))
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "before" and v}
    context = {
        "page": page,
        "sites": sites,
        "flt": flt,
        "values": request.args,
        "errors": errors,
        "statuses": list(STATUS_LABELS),
        "status_label": status_label,
        "window_text": window_text,
        "person_link": _person_link,
        "may_revoke": current_user.role in MANAGERS,
        "next_url": url_for(".index", **args, before=page.next_before) if page.next_before else None,
        "first_url": url_for(".index", **args) if request.args.get("before") else None,
    }
    return render_template("passes/index.html", **context)


def _back(target: str) -> str:
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc and not parts.scheme:
        return target
    return url_for(".index")


@bp.post("/<int:pass_id>/revoke")
@require_role(*MANAGERS)
def revoke(pass_id: int) -> ResponseReturnValue:
    """Revoke a visitor pass: terminals refuse its code and QR once they hear."""
    visitor_pass = db.session.get(VisitorPass, pass_id)
    if visitor_pass is None:
        abort(404, _("No visitor pass with this id."))
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400)
    before = visitor_pass.status
    passes.revoke_pass(db.session, Actor.of(current_user._get_current_object()), visitor_pass)
    db.session.commit()
    if visitor_pass.status is PassStatus.REVOKED and before is not PassStatus.REVOKED:
        flash(_("The pass for %(name)s is revoked.", name=visitor_pass.visitor_name), "success")
    else:
        flash(
            _("The pass for %(name)s had already ended; nothing changed.", name=visitor_pass.visitor_name),
            "info",
        )
    return redirect(_back(form.next.data))
