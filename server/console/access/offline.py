"""Console: each site's offline bound: when a silent terminal alarms, and what a cut-off terminal still lets in."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from gatehouse_core.wire.records import OfflinePolicy
from server.console.access.common import actor, all_sites, bp, site_or_404
from server.console.access.forms import OfflineBoundForm
from server.console.forms import field_errors
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.services.access import sites
from server.services.errors import DomainError

POLICY_LABELS = {
    OfflinePolicy.KEEP_RESIDENTS: _l("Keep residents getting in (visitor passes and new credentials refused)"),
    OfflinePolicy.FAIL_SECURE: _l("Fail secure (only staff cards open)"),
}
_FIELD_OF = {"bad_offline_alarm": "offline_alarm_minutes", "bad_max_offline_hours": "max_offline_hours"}


def _render(
    errors: dict[str, str] | None = None, values: dict[str, Any] | None = None, status: int = 200
) -> ResponseReturnValue:
    return (
        render_template(
            "access/offline.html",
            sites=all_sites(),
            errors=errors or {},
            values=values or {},
            policies=POLICY_LABELS,
            alarm_range=sites.OFFLINE_ALARM_MINUTES,
            hours_range=sites.MAX_OFFLINE_HOURS,
        ),
        status,
    )


@bp.get("/offline-bound")
@require_role(*MANAGERS)
def offline_bound() -> ResponseReturnValue:
    """Each site's offline alarm, offline bound and policy, with a form to change them."""
    return _render()


@bp.post("/offline-bound/<int:site_id>")
@require_role(*MANAGERS)
def set_offline_bound(site_id: int) -> ResponseReturnValue:
    """Change a site's offline settings."""
    site = site_or_404(site_id)
    form = OfflineBoundForm()
    values = {
        "site_id": site.id,
        **{name: (form[name].raw_data or [""])[0] for name in ("offline_alarm_minutes", "max_offline_hours")},
        "offline_policy": form.offline_policy.data,
    }
    if not form.validate_on_submit():
        return _render(field_errors(form), values, 422)
    try:
        changed = sites.set_offline_bound(db.session, actor(), site, form.bound())
    except DomainError as exc:
        db.session.rollback()
        return _render({_FIELD_OF.get(exc.code, "max_offline_hours"): _message(exc)}, values, exc.http_status)
    db.session.commit()
    if changed:
        flash(
            _("Offline settings of %(site)s saved; its terminals learn them at the next sync.", site=site.name),
            "success",
        )
    return redirect(url_for(".offline_bound"))


def _message(exc: DomainError) -> str:
    low, high = sites.OFFLINE_ALARM_MINUTES if exc.code == "bad_offline_alarm" else sites.MAX_OFFLINE_HOURS
    if exc.code == "bad_offline_alarm":
        return _("Enter %(low)d to %(high)d minutes (a week at most).", low=low, high=high)
    if exc.code == "bad_max_offline_hours":
        return _("Enter %(low)d to %(high)d hours (a year at most).", low=low, high=high)
    return exc.message
