"""Console: each site's holidays, on which groups not open on holidays let nobody in."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from server.console.access.common import WEEKDAYS, actor, all_sites, bp, message, site_or_404
from server.console.access.forms import HolidayForm
from server.console.forms import field_errors
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import Holiday
from server.services.access import access
from server.services.errors import DomainError


def _render_holidays(
    errors: dict[str, str] | None = None, values: dict[str, Any] | None = None, status: int = 200
) -> ResponseReturnValue:
    sites = all_sites()
    by_site: dict[int, list[Holiday]] = {}
    for holiday in db.session.scalars(select(Holiday).order_by(Holiday.site_id, Holiday.day)):
        by_site.setdefault(holiday.site_id, []).append(holiday)
    return (
        render_template(
            "access/holidays.html",
            sites=sites,
            by_site=by_site,
            errors=errors or {},
            values=values or {},
            weekdays=WEEKDAYS,
            today={s.id: datetime.now(ZoneInfo(s.timezone)).date() for s in sites},
        ),
        status,
    )


@bp.get("/holidays")
@require_role(*MANAGERS)
def holidays() -> ResponseReturnValue:
    """Each site's holidays, with forms to add and remove them."""
    return _render_holidays()


@bp.post("/holidays")
@require_role(*MANAGERS)
def add_holiday() -> ResponseReturnValue:
    """Declare a holiday at a site."""
    form = HolidayForm()
    site = site_or_404(form.site_id.data)
    # What was typed goes back into that site's form (the date as typed, even when it is no date).
    values = {"site_id": site.id, "day": (form.day.raw_data or [""])[0], "name": form.name.data}
    if not form.validate_on_submit():
        return _render_holidays(field_errors(form), values, 422)
    try:
        holiday = access.add_holiday(db.session, actor(), site, form.day.data, form.name.data)
    except DomainError as exc:
        db.session.rollback()
        where = "day" if exc.code == "duplicate_holiday" else "name"
        return _render_holidays({where: message(exc)}, values, exc.http_status)
    db.session.commit()
    flash(_("Holiday %(name)s on %(day)s added.", name=holiday.name, day=form.day.data.isoformat()), "success")
    return redirect(url_for(".holidays"))


@bp.post("/holidays/<int:holiday_id>/remove")
@require_role(*MANAGERS)
def remove_holiday(holiday_id: int) -> ResponseReturnValue:
    """Make a holiday an ordinary day again."""
    holiday = db.session.get(Holiday, holiday_id)
    if holiday is None:
        abort(404, _("This holiday has already been removed."))
    name, day = holiday.name, holiday.day.isoformat()
    access.remove_holiday(db.session, actor(), holiday)
    db.session.commit()
    flash(_("Holiday %(name)s on %(day)s removed.", name=name, day=day), "success")
    return redirect(url_for(".holidays"))
