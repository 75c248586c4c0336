"""Console: Privacy: notices, impact assessment, face entry on or off, retention settings and figures.

Managers see everything; only administrators change anything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_decimal, format_percent, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import Field

from server.console.privacy_forms import (
    ASSESSMENT_FIELDS,
    SECTION_HINTS,
    AssessmentForm,
    NoticeForm,
    RetentionForm,
)
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import AlarmKind, ConsoleRole, Site
from server.services.audit import Actor
from server.services.errors import DomainError
from server.services.face.count import face_count
from server.services.face.enrollment import FaceUnavailable
from server.services.privacy import alarms, notice_text, privacy, retention_settings
from server.services.privacy.figures import site_figures
from server.services.privacy.notice_text import NoticeRefused
from server.services.privacy.retention_settings import RANGES, RetentionSettings
from server.services.reports import timefmt
from server.state import state

bp = Blueprint("privacy", __name__, url_prefix="/privacy")

ADMINS = (ConsoleRole.ADMIN,)

# Service error codes, as the console says them (the services' own messages are English and CLI-minded).
_ERRORS = {
    "pia_missing": _l("Attach a privacy impact assessment to this site first (see “Impact assessment” below)."),
    "pia_review_overdue": _l("The impact assessment is overdue for review: attach the reviewed assessment first."),
    "notice_missing": _l("Publish the site's privacy notice first: nobody can consent to face entry without it."),
    "face_already_on": _l("Face entry is already on for this site."),
    "face_already_off": _l("Face entry is already off for this site."),
    "notice_unchanged": _l("This text is the same as the current version. Change something before publishing."),
    "notice_incomplete": _l("Every part of the notice must be filled in, in English and in Chinese."),
    "notice_to_complete": _l(
        "This part still has starter text marked “to complete”: replace each marked part with this site's facts."
    ),
    "notice_too_long": _l("A part of the notice is too long; shorten it."),
    "pia_incomplete": _l("An impact assessment needs its author and a summary of its findings."),
    "pia_review_order": _l("The review date must come after the assessment date."),
    "pia_future": _l("The assessment date lies in the future; enter the date it was made."),
    "setting_out_of_range": _l("A setting is outside its allowed range; correct the marked field."),
}
_ALARM_KINDS = {
    AlarmKind.ERASURE_OVERDUE: _l("Erasure overdue"),
    AlarmKind.FACE_COUNT: _l("Face count near the filing threshold"),
    AlarmKind.SNAPSHOT_BUDGET: _l("Terminal over its snapshot budget"),
}
_PURGE_KINDS = {
    "access_events": _l("door events"),
    "visitor_passes": _l("visitor passes"),
    "face_templates": _l("face templates"),
}


def _message(exc: DomainError) -> str:
    """A domain error in the user's language where the console knows its code, else the service's words."""
    known = _ERRORS.get(exc.code)
    return str(known) if known is not None else exc.message


def _actor() -> Actor:
    return Actor.of(current_user._get_current_object())


def _site(site_id: int) -> Site:
    site = db.session.get(Site, site_id)
    if site is None:
        abort(404, _("There is no site with this number."))
    return site


def _is_admin() -> bool:
    return bool(current_user.role == ConsoleRole.ADMIN)


def _engine_model() -> tuple[str | None, str | None]:
    """The face model of this server's engine, or why there is none (None, None: no [face] section)."""

    engine = state().face
    if not engine.configured:
        return None, None
    try:
        return engine.model().model_id, None
    except FaceUnavailable as exc:
        return None, exc.message


def _helpers(site: Site) -> dict[str, Any]:
    return {
        # The site's local time, as everywhere else in the console.
        "when": lambda value: timefmt.site_time(value, site.timezone) if value is not None else "—",
        "day": lambda value: format_date(value, "medium") if value is not None else "—",
        "percent": lambda value: format_percent(value, "#,##0.0%") if value is not None else "—",
        "number": format_decimal,
        "ranges": RANGES,
        "alarm_kinds": _ALARM_KINDS,
        "purge_kinds": _PURGE_KINDS,
        "is_admin": _is_admin(),
    }


def _render_site(
    site: Site,
    *,
    assessment_form: AssessmentForm | None = None,
    retention_form: RetentionForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """The privacy page of one site, with the admin's forms (fresh, or as submitted with their errors)."""
    sites = db.session.execute(select(Site.id, Site.name, Site.code).order_by(Site.name, Site.id)).all()
    model_id, model_problem = _engine_model()
    context = {
        "sites": sites,
        "site": site,
        "figures": site_figures(db.session, site),
        "faces": face_count(db.session),
        "notices": privacy.notice_versions(db.session, site),
        "assessment": privacy.current_assessment(db.session, site),
        "blockers": [b.code for b in privacy.face_blockers(db.session, site)],
        "model_id": model_id,
        "model_problem": model_problem,
        "alarms": alarms.open_alarms(db.session, site.id)[:50],
        "last_purge": retention_settings.last_purge(db.session, site),
        "live_consents": privacy.live_consents(db.session, site),
        "assessment_form": assessment_form or AssessmentForm(formdata=None),
        "retention_form": retention_form or RetentionForm(formdata=None, obj=RetentionSettings.of(site)),
        **_helpers(site),
    }
    return render_template("privacy/index.html", **context), status


@bp.get("")
@require_role(*MANAGERS)
def index() -> ResponseReturnValue:
    """A site's privacy set-up: face entry, notice versions, impact assessment, retention, figures, alarms."""
    chosen = request.args.get("site", type=int)
    site = db.session.get(Site, chosen) if chosen is not None else None
    if site is None:
        site = db.session.scalar(select(Site).order_by(Site.name, Site.id).limit(1))
    if site is None:
        return render_template("privacy/no_site.html")
    return _render_site(site)


def _back(site: Site) -> ResponseReturnValue:
    return redirect(url_for(".index", site=site.id))


@bp.post("/<int:site_id>/face/on")
@require_role(*ADMINS)
def face_on(site_id: int) -> ResponseReturnValue:
    """Switch face entry on with this server's face model, once the assessment and notice are in place."""
    site = _site(site_id)
    model_id, problem = _engine_model()
    if model_id is None:
        flash(problem or _("This server has no face engine configured; see “Face entry” below."), "error")
        return _back(site)
    try:
        privacy.enable_face(db.session, _actor(), site, model_id)
    except DomainError as exc:
        db.session.rollback()
        flash(_("Face entry was not switched on: %(reason)s", reason=_message(exc)), "error")
        return _back(site)
    db.session.commit()
    flash(_("Face entry is on (model %(model)s). Card, ID and code keep working at every door.", model=model_id))
    return _back(site)


@bp.post("/<int:site_id>/face/off")
@require_role(*ADMINS)
def face_off(site_id: int) -> ResponseReturnValue:
    """Switch face entry off: terminals drop every face template at once."""
    site = _site(site_id)
    try:
        privacy.disable_face(db.session, _actor(), site)
    except DomainError as exc:
        db.session.rollback()
        flash(_message(exc), "error")
        return _back(site)
    db.session.commit()
    flash(_("Face entry is off. Terminals drop their face templates as soon as they sync."), "success")
    return _back(site)


def _reader_language() -> str:
    """The notice language that matches the console's language (zh_CN reads the Chinese part first)."""
    return "zh" if str(get_locale() or "").startswith("zh") else "en"


@bp.get("/<int:site_id>/notices/<int:version>")
@require_role(*MANAGERS)
def notice(site_id: int, version: int) -> ResponseReturnValue:
    """One notice version, exactly as people are shown it: each language with its own headings."""
    site = _site(site_id)
    try:
        found = privacy.get_notice(db.session, site, version)
    except DomainError:
        abort(404, _("This site has no privacy notice version %(version)s.", version=version))
    current = privacy.current_notice(db.session, site)
    readings = privacy.readings(found)
    first = _reader_language()
    ordered = sorted(readings.values(), key=lambda reading: reading.lang != first)
    return render_template(
        "privacy/notice.html",
        site=site,
        notice=found,
        current=current,
        readings=ordered,
        **_notice_helpers(),
        **_helpers(site),
    )


def _notice_helpers() -> dict[str, Any]:
    return {
        "notice_sections": notice_text.SECTIONS,
        "languages": notice_text.LANGUAGES,
        "language_names": notice_text.LANGUAGE_NAMES,
        "html_langs": {"en": "en", "zh": "zh-CN"},
        "guarantee": notice_text.GUARANTEE,
        "section_hints": SECTION_HINTS,
    }


@bp.route("/<int:site_id>/notices/new", methods=["GET", "POST"])
@require_role(*ADMINS)
def new_notice(site_id: int) -> ResponseReturnValue:
    """Publish a new notice version; every live consent of the site becomes stale.

    The form starts from the current version, or from the starter texts (marked where the site must complete
    them) for a first notice or for what an English-only notice did not say.
    """
    site = _site(site_id)
    current = privacy.current_notice(db.session, site)
    if request.method == "GET":
        form = NoticeForm(formdata=None, data=NoticeForm.data_of(privacy.next_draft(db.session, site)))
    else:
        form = NoticeForm()
    error = None
    if form.validate_on_submit():
        # Counted in the same transaction, with the same conditions as the publish that makes them stale.
        stale = privacy.live_consents(db.session, site) if current is not None else 0
        try:
            published = privacy.publish_notice(db.session, _actor(), site, form.draft())
        except NoticeRefused as exc:
            db.session.rollback()
            _field_error(form, exc.field, _message(exc))
            error = _("The notice was not published: correct the marked part.")
        except DomainError as exc:
            db.session.rollback()
            error = _message(exc)
        else:
            db.session.commit()
            flash(
                ngettext(
                    "Version %(version)s of the notice is published. %(num)s consent became stale: that "
                    "person must renew their consent to use face entry.",
                    "Version %(version)s of the notice is published. %(num)s consents became stale: those "
                    "people must renew their consent to use face entry.",
                    stale,
                    version=published.version,
                ),
                "success",
            )
            return redirect(url_for(".notice", site_id=site.id, version=published.version))
    elif request.method == "POST":
        error = _("The notice was not published: correct the marked parts.")
    marked = {f"{key}_{lang}" for key, lang in notice_text.to_complete(form.draft())}
    status = 422 if request.method == "POST" else 200
    return (
        render_template(
            "privacy/notice_form.html",
            site=site,
            form=form,
            current=current,
            error=error,
            marked=marked,
            live_consents=privacy.live_consents(db.session, site),
            **_notice_helpers(),
            **_helpers(site),
        ),
        status,
    )


@bp.post("/<int:site_id>/assessment")
@require_role(*ADMINS)
def attach_assessment(site_id: int) -> ResponseReturnValue:
    """Attach a new privacy impact assessment to the site."""
    site = _site(site_id)
    form = AssessmentForm()
    if form.validate_on_submit():
        try:
            privacy.attach_assessment(
                db.session,
                _actor(),
                site,
                assessed_on=form.assessed_on.data,
                author=form.author.data or "",
                review_due=form.review_due.data,
                summary=form.summary.data or "",
            )
        except DomainError as exc:
            db.session.rollback()
            _field_error(form, ASSESSMENT_FIELDS.get(exc.code, "summary"), _message(exc))
        else:
            db.session.commit()
            flash(_("The impact assessment is attached."), "success")
            return _back(site)
    return _render_site(site, assessment_form=form, status=422)


@bp.post("/<int:site_id>/retention")
@require_role(*ADMINS)
def save_retention(site_id: int) -> ResponseReturnValue:
    """Save the site's retention settings."""
    site = _site(site_id)
    form = RetentionForm()
    if form.validate_on_submit():
        try:
            changed = retention_settings.save_settings(db.session, _actor(), site, form.settings())
        except DomainError as exc:
            db.session.rollback()
            flash(_message(exc), "error")
        else:
            db.session.commit()
            if changed:
                flash(_("Retention settings saved."), "success")
            else:
                flash(_("Nothing changed: the settings are as they were."))
            return _back(site)
    return _render_site(site, retention_form=form, status=422)


def _field_error(form: FlaskForm, name: str, message: str) -> None:
    field: Field = form[name]
    field.errors = [*field.errors, message]
