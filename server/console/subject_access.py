"""Subject access in the console: everything held about a person, as a readable page or a JSON download."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from babel import Locale
from babel.dates import format_date
from flask import Blueprint, Response, abort, current_app, has_request_context, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import escape
from sqlalchemy import select

from server.console import audit_words, monitor, passes
from server.console.i18n import html_lang
from server.console.people import KIND_LABELS, STATUS_LABELS
from server.console.person.common import CREDENTIAL_LABELS, CREDENTIAL_STATUS
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import ConsentChannel, ErasureReason, Person, Site, StaleReason
from server.services.audit import Actor
from server.services.privacy import subject_access as service
from server.services.reports import timefmt

bp = Blueprint("subject_access", __name__)

CHANNEL_LABELS: dict[str, Any] = {
    ConsentChannel.CONSOLE: _l("in the console"),
    ConsentChannel.APP: _l("in the resident app"),
    ConsentChannel.DESK: _l("at the front desk"),
}
ERASURE_REASON_LABELS: dict[str, Any] = {
    ErasureReason.CONSENT_WITHDRAWN: _l("consent withdrawn"),
    ErasureReason.MOVED_OUT: _l("moved out"),
    ErasureReason.RETENTION: _l("not used within the retention period"),
    ErasureReason.REPLACED: _l("replaced by a new template"),
    ErasureReason.MANAGER: _l("erased by a manager"),
    ErasureReason.DEACTIVATED: _l("face entry turned off at the site"),
    ErasureReason.MODEL_CHANGED: _l("the site changed its face model"),
}
STALE_REASON_LABELS: dict[str, Any] = {
    StaleReason.NOTICE: _l("a new privacy notice was published"),
    StaleReason.FACE_MODEL: _l("the site changed its face model"),
}
# Each coded field of the report and the words for its values; an unknown code is shown as it is.
LABELS: dict[str, Mapping[Any, Any]] = {
    "person_kind": KIND_LABELS,
    "person_status": STATUS_LABELS,
    "credential_kind": CREDENTIAL_LABELS,
    "credential_status": CREDENTIAL_STATUS,
    "channel": CHANNEL_LABELS,
    "erasure_reason": ERASURE_REASON_LABELS,
    "stale_reason": STALE_REASON_LABELS,
    "pass_status": passes.STATUS_LABELS,
    "method": monitor.METHOD_LABELS,
    "decision": monitor.DECISION_LABELS,
    "event_reason": monitor.REASON_LABELS,
}


def _locale() -> Locale:
    return get_locale() or Locale("en")


def readable_time(value: str | None, timezone: str | None = None) -> str:
    """An ISO date or datetime from the report in the site's zone: '3 May 2025, 22:05 (Asia/Shanghai, UTC+8)'."""
    if not value:
        return "—"
    locale = _locale()
    if len(value) == 10:
        return _day(date.fromisoformat(value), locale)
    moment = datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = moment.astimezone(timefmt.zone(timezone))
    return _(
        "%(day)s, %(time)s (%(zone)s)",
        day=_day(local.date(), locale),
        time=local.strftime("%H:%M"),
        zone=timefmt.zone_text(timezone, moment),
    )


def _day(day: date, locale: Locale) -> str:
    # English readers get '3 May 2025' (the CLDR 'long' English form is the US 'May 3, 2025').
    pattern = "d MMMM y" if locale.language == "en" else "long"
    return str(format_date(day, format=pattern, locale=locale))


def words(field: str, value: object) -> str:
    """A code from the report ('consent_withdrawn') in the user's language ('consent withdrawn')."""
    if value is None:
        return "—"
    label = LABELS[field].get(str(value))
    return str(label) if label is not None else str(value)


def _helpers(timezone: str | None, alarm_hours: int = 24) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "when": lambda value: readable_time(value, timezone),
        "progress": lambda erasure: service.erasure_progress(erasure, alarm_hours, now),
        "words": words,
        "zone": timefmt.zone_text(timezone),
        "timezone": timezone,
        "action_label": audit_words.action_label,
        "audit_details": audit_words.audit_details,
    }


def _report_site(report: dict[str, Any]) -> tuple[str | None, int]:
    """The zone and erasure alarm hours of the site named in the report (the report carries codes, not zones)."""
    code = report.get("controller", {}).get("site_code")
    row = db.session.execute(select(Site.timezone, Site.erasure_alarm_hours).where(Site.code == code)).first()
    return (row.timezone, row.erasure_alarm_hours) if code and row else (None, 24)


def _person(person_id: int) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        abort(404, "No person with this id.")
    return person


@bp.get("/people/<int:person_id>/subject-access")
@require_role(*MANAGERS)
def page(person_id: int) -> ResponseReturnValue:
    """Everything held about a person, in plain English."""
    person = _person(person_id)
    report = service.export(db.session, Actor.of(current_user), person, "html")
    db.session.commit()
    json_url = url_for(".download", person_id=person.id)
    helpers = _helpers(person.site.timezone, person.site.erasure_alarm_hours)
    return render_template("subject_access.html", report=report, json_url=json_url, **helpers)


@bp.get("/people/<int:person_id>/subject-access.json")
@require_role(*MANAGERS)
def download(person_id: int) -> ResponseReturnValue:
    """Everything held about a person, as a JSON file named by pseudonym (names stay out of file listings)."""
    person = _person(person_id)
    report = service.export(db.session, Actor.of(current_user), person, "json")
    db.session.commit()
    return Response(
        to_json(report),
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="subject-access-{person.pseudonym}.json"',
            "Cache-Control": "no-store",
        },
    )


def to_json(report: dict[str, Any]) -> str:
    """The report as the JSON document people receive."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_document(report: dict[str, Any]) -> str:
    """The page as a self-contained HTML file (for the CLI): the page's content block, no console chrome."""
    if has_request_context():
        return _document(report)
    # The CLI has no request: a bare one gives the default language (English) and the report's own words.
    with current_app.test_request_context():
        return _document(report)


def _document(report: dict[str, Any]) -> str:
    template = current_app.jinja_env.get_template("subject_access.html")
    context = template.new_context({"report": report, "json_url": None, **_helpers(*_report_site(report))})
    body = "".join(template.blocks["content"](context))
    with current_app.open_resource("console/static/console.css", "r", encoding="utf-8") as handle:
        css: str = handle.read()
    title = escape(_("Subject access report · %(pseudonym)s", pseudonym=report["person"]["pseudonym"]))
    lang = html_lang(str(_locale()))
    return (
        f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>\n{css}</style>\n</head>\n"
        f'<body>\n<main id="main">\n{body}\n</main>\n</body>\n</html>\n'
    )
