"""Console: Events log with CSV export, and the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, g, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import DateField, Field, SelectField, StringField
from wtforms.validators import Length, Optional

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.console import audit_words
from server.console.i18n import label
from server.console.roles import ANY_ROLE, MANAGERS, require_role
from server.extensions import db
from server.models import ConsoleRole, Door, Site, Terminal, utcnow
from server.services import audit
from server.services.audit import Actor
from server.services.reports import audit_log, event_log, timefmt
from server.services.reports.event_log import Cursor, EventFilters

bp = Blueprint("monitor", __name__)

# ---- labels and formatting shared by the dashboard, terminals and events pages -----------------------------------

METHOD_LABELS: dict[EntryMethod, Any] = {
    EntryMethod.FACE: _l("Face"),
    EntryMethod.CARD: _l("Card"),
    EntryMethod.ID_DOCUMENT: _l("ID document"),
    EntryMethod.APP_CODE: _l("App code"),
    EntryMethod.VISITOR_CODE: _l("Visitor code"),
    EntryMethod.VISITOR_QR: _l("Visitor QR code"),
    EntryMethod.REMOTE: _l("Opened from the console"),
}
DECISION_LABELS: dict[Decision, Any] = {
    Decision.GRANT: _l("Granted"),
    Decision.DENY: _l("Denied"),
    Decision.ALARM: _l("Alarm"),
}
# The reasons terminals record (terminals/decision.py Reason); an unknown code is shown as it is.
REASON_LABELS: dict[str, Any] = {
    "granted": _l("Allowed"),
    "unknown": _l("Not recognised"),
    "malformed": _l("Unreadable input"),
    "outside_schedule": _l("Outside the allowed hours"),
    "not_yet_valid": _l("Not valid yet"),
    "expired": _l("Expired"),
    "revoked": _l("Revoked"),
    "used_up": _l("Pass used up"),
    "wrong_door": _l("Not allowed at this door"),
    "method_not_allowed": _l("Method not accepted at this door"),
    "replayed": _l("Code already used"),
    "ambiguous": _l("Ambiguous match"),
    "locked_out": _l("Keypad locked after wrong codes"),
    "brute_force": _l("Repeated wrong codes"),
    "face_sync_pending": _l("Face entry waiting for sync"),
    "offline_bound": _l("Refused: terminal cut off from the server past its offline bound"),
    "door_forced": _l("Door forced open"),
    "door_held_open": _l("Door held open too long"),
}


def method_label(method: EntryMethod | str) -> str:
    """An entry method in the user's language."""
    try:
        found = label(METHOD_LABELS, EntryMethod(method))
    except ValueError:
        found = None
    return found if found is not None else str(method)


# Alarms a terminal raises from a door's contact (forced, held open) carry the wire's placeholder method
# `remote` until events have a door-sensor method of their own; the events table names the sensor instead.
DOOR_SENSOR_REASONS = frozenset({"door_forced", "door_held_open"})
SENSOR_LABEL = {"sensor": _l("Door sensor")}


def event_method_label(method: EntryMethod | str, reason: str | None) -> str:
    """How an event came about, in words: the entry method, or the door's sensor for a door alarm."""
    if reason in DOOR_SENSOR_REASONS:
        return label(SENSOR_LABEL, "sensor") or "Door sensor"
    return method_label(method)


def decision_label(decision: Decision | str) -> str:
    """A decision in the user's language."""
    try:
        found = label(DECISION_LABELS, Decision(decision))
    except ValueError:
        found = None
    return found if found is not None else str(decision)


def reason_label(reason: str) -> str:
    """A terminal's reason code in the user's language, or the code itself if it is not known here."""
    found = label(REASON_LABELS, reason)
    return found if found is not None else reason


def home_timezone() -> str:
    """The zone for records of no site (audit log, imports), looked up once per request."""
    if "home_timezone" not in g:
        g.home_timezone = timefmt.home_timezone(db.session)
    return str(g.home_timezone)


def local_time(value: datetime | None, timezone: str | None = None, seconds: bool = True) -> Markup:
    """A <time> element: the moment in `timezone` (the first site's when none is given), 24-hour, zone shown."""
    if value is None:
        return Markup("—")
    shown = timefmt.site_time(value, timezone or home_timezone(), seconds=seconds)
    return Markup('<time datetime="{}">{}</time>').format(value.astimezone(UTC).isoformat(), shown)


def field_aria(field: Field, hint: bool = False, **extra: Any) -> dict[str, Any]:
    """`extra` with aria-invalid and aria-describedby for a form field, pointing at its hint and error elements."""
    described = [f"{field.id}-hint"] if hint else []
    attrs: dict[str, Any] = dict(extra)
    if field.errors:
        described.append(f"{field.id}-error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return attrs


for _helper in (method_label, event_method_label, decision_label, reason_label, local_time, field_aria, home_timezone):
    bp.add_app_template_global(_helper)


def day_start(day: date, timezone: str) -> datetime:
    """Midnight starting `day` in `timezone`, as aware UTC."""
    return datetime.combine(day, time(), tzinfo=timefmt.zone(timezone)).astimezone(UTC)


def _query_string(args: dict[str, str], **changes: str | None) -> str:
    merged = {k: v for k, v in {**args, **changes}.items() if v}
    return urlencode(merged)


# ---- events -------------------------------------------------------------------------------------------------------


class EventFilterForm(FlaskForm):
    """Filters of the events log, read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    site = SelectField(_l("Site"))
    door = SelectField(_l("Door"))
    terminal = SelectField(_l("Terminal"))
    method = SelectField(_l("Method"))
    decision = SelectField(_l("Decision"))
    person = StringField(_l("Person (name or pseudonym)"), validators=[Optional(), Length(max=200)])
    date_from = DateField(_l("From date"), validators=[Optional()])
    date_to = DateField(_l("To date (inclusive)"), validators=[Optional()])


def _event_form() -> tuple[EventFilterForm, EventFilters | None, str]:
    """The filter form from the query string, the filters if valid, and the time zone its dates are in."""
    form = EventFilterForm(request.args)
    sites = db.session.execute(select(Site.id, Site.name, Site.timezone).order_by(Site.name, Site.id)).all()
    several = len(sites) > 1
    site_names = {s.id: s.name for s in sites}

    def named(site_id: int, name: str) -> str:
        return _("%(site)s: %(name)s", site=site_names.get(site_id, "?"), name=name) if several else name

    doors = db.session.execute(select(Door.id, Door.site_id, Door.name).order_by(Door.site_id, Door.name)).all()
    terms = db.session.execute(
        select(Terminal.id, Terminal.site_id, Terminal.name).order_by(Terminal.site_id, Terminal.name)
    ).all()
    form.site.choices = [("", _("Any site")), *((str(s.id), s.name) for s in sites)]
    form.door.choices = [("", _("Any door")), *((str(d.id), named(d.site_id, d.name)) for d in doors)]
    form.terminal.choices = [("", _("Any terminal")), *((str(t.id), named(t.site_id, t.name)) for t in terms)]
    form.method.choices = [("", _("Any method")), *((m.value, method_label(m)) for m in EntryMethod)]
    form.decision.choices = [("", _("Any decision")), *((d.value, decision_label(d)) for d in Decision)]
    for select_field in (form.site, form.door, form.terminal, form.method, form.decision):
        if select_field.data is None:
            select_field.data = ""
    chosen = int(form.site.data) if (form.site.data or "").isdigit() else None
    timezone = next((s.timezone for s in sites if s.id == chosen), sites[0].timezone if sites else "UTC")
    if not form.validate():
        return form, None, timezone
    if form.date_from.data and form.date_to.data and form.date_to.data < form.date_from.data:
        form.date_to.errors = [_("The end date is before the start date; choose a later end date.")]
        return form, None, timezone

    def number(value: str | None) -> int | None:
        return int(value) if value else None

    filters = EventFilters(
        site_id=chosen,
        door_id=number(form.door.data),
        terminal_id=number(form.terminal.data),
        method=EntryMethod(form.method.data) if form.method.data else None,
        decision=Decision(form.decision.data) if form.decision.data else None,
        person=(form.person.data or "").strip() or None,
        since=day_start(form.date_from.data, timezone) if form.date_from.data else None,
        until=day_start(form.date_to.data + timedelta(days=1), timezone) if form.date_to.data else None,
    )
    return form, filters, timezone


def _filter_args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k != "before" and v}


@bp.get("/events")
@require_role(*ANY_ROLE)
def events() -> ResponseReturnValue:
    """Access events, newest first, filtered; 50 a page with an "Older" link."""
    form, filters, timezone = _event_form()
    before = Cursor.decode(request.args.get("before"))
    result = event_log.page(db.session, filters, before) if filters is not None else event_log.EventPage([], None)
    args = _filter_args()
    base = url_for(".events")
    older_url = f"{base}?{_query_string(args, before=result.older.encode())}" if result.older else None
    newest_url = f"{base}?{_query_string(args)}" if before else None
    csv_url = f"{url_for('.events_csv')}?{_query_string(args)}" if filters is not None else None
    status = 200 if filters is not None else 400
    return (
        render_template(
            "monitor/events.html",
            form=form,
            page=result,
            timezone=timezone,
            older_url=older_url,
            newest_url=newest_url,
            csv_url=csv_url if current_user.role in MANAGERS else None,
            csv_cap=event_log.CSV_CAP,
            person_matches=event_log.PERSON_MATCHES,
        ),
        status,
    )


@bp.get("/events.csv")
@require_role(*MANAGERS)
def events_csv() -> ResponseReturnValue:
    """The filtered events as CSV, streamed in chunks; capped, and the export is audited."""
    _form, filters, _timezone = _event_form()
    if filters is None:
        abort(400, _("The filters are not valid; correct them on the events page, then export again."))
    cap = event_log.CSV_CAP
    audit.record(
        db.session,
        Actor.of(current_user._get_current_object()),
        "events.export",
        "access_events",
        site_id=filters.site_id,
        details={"filters": filters.summary(), "row_cap": cap, "format": "csv"},
    )
    db.session.commit()
    note = _(
        "Export stopped after %(cap)d rows. Narrow the filters (dates, site, door) and export the rest separately.",
        cap=cap,
    )
    lines = event_log.csv_lines(db.session, filters, cap=cap, capped_note=note)
    filename = f"gatehouse-events-{utcnow():%Y%m%d-%H%M%S}.csv"
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# ---- audit log ----------------------------------------------------------------------------------------------------


class AuditFilterForm(FlaskForm):
    """Filters of the audit log, read from the query string (the names older links use)."""

    class Meta:
        csrf = False

    action = SelectField(_l("Action"), validators=[Optional(), Length(max=64)])
    actor = StringField(_l("Who (part of the name)"), validators=[Optional(), Length(max=120)])
    target_type = StringField(_l("Target type"), validators=[Optional(), Length(max=32)])
    date_from = DateField(_l("From date"), validators=[Optional()])
    date_to = DateField(_l("To date (inclusive)"), validators=[Optional()])


@bp.get("/audit", endpoint="audit")
@require_role(ConsoleRole.ADMIN)
def audit_entries() -> ResponseReturnValue:
    """The audit log (admins only), newest first, filtered, keyset-paged."""
    form = AuditFilterForm(request.args)
    # Actions in words; a code from an older link (`credential.add`, `terminal.`) is among them or added.
    form.action.choices = audit_words.action_choices(request.args.get("action"))
    valid = form.validate()
    if valid and form.date_from.data and form.date_to.data and form.date_to.data < form.date_from.data:
        form.date_to.errors = [_("The end date is before the start date; choose a later end date.")]
        valid = False
    before = Cursor.decode(request.args.get("before"))
    result = audit_log.AuditPage([], None)
    timezone = home_timezone()
    if valid:
        filters = audit_log.AuditFilters(
            actor=form.actor.data or None,
            action=form.action.data or None,
            target_type=form.target_type.data or None,
            since=day_start(form.date_from.data, timezone) if form.date_from.data else None,
            until=day_start(form.date_to.data + timedelta(days=1), timezone) if form.date_to.data else None,
        )
        result = audit_log.page(db.session, filters, before)
    args = _filter_args()
    base = url_for(".audit")
    return (
        render_template(
            "monitor/audit.html",
            form=form,
            page=result,
            timezone=timezone,
            action_label=audit_words.action_label,
            audit_details=audit_words.audit_details,
            filtered=any(
                _filter_args().get(name) for name in ("action", "actor", "target_type", "date_from", "date_to")
            ),
            site_zones={site_id: zone for site_id, zone in db.session.execute(select(Site.id, Site.timezone))},
            site_names={site_id: name for site_id, name in db.session.execute(select(Site.id, Site.name))},
            older_url=f"{base}?{_query_string(args, before=result.older.encode())}" if result.older else None,
            newest_url=f"{base}?{_query_string(args)}" if before else None,
        ),
        200 if valid else 400,
    )
