"""Console: People list, search, create, edit, move-out and CSV import."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from server.console.forms import CalendarDateField
from server.console.i18n import label
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import AccessGroup, ImportJob, Person, PersonKind, PersonStatus, Site
from server.services.access.usual_group import usual_group
from server.services.audit import Actor
from server.services.errors import DomainError
from server.services.people import csv_import as people_import
from server.services.people import people as service
from server.services.people.people import FaceFilter, PeopleQuery
from server.services.people.registration import register_person
from server.services.wording.operators import describe, field_message
from server.state import state

bp = Blueprint("people", __name__, url_prefix="/people")

PAGE_SIZE = 50
ERRORS_SHOWN = 500

KIND_LABELS = {PersonKind.RESIDENT: _l("resident"), PersonKind.STAFF: _l("staff"), PersonKind.VISITOR: _l("visitor")}
STATUS_LABELS = {
    PersonStatus.ACTIVE: _l("active"),
    PersonStatus.MOVED_OUT: _l("moved out"),
    PersonStatus.SUSPENDED: _l("suspended"),
}
FACE_LABELS = {
    FaceFilter.ENROLLED: _l("face enrolled"),
    FaceFilter.CONSENTED: _l("consented, not enrolled"),
    FaceFilter.NONE: _l("no face consent"),
}
FIELD_LABELS = {
    "full_name": _l("Full name"),
    "site": _l("Site"),
    "kind": _l("Kind"),
    "unit": _l("Unit"),
    "date_of_birth": _l("Date of birth"),
    "phone": _l("Phone"),
    "row": _l("Whole row"),
}
# Service error codes in the user's language; unknown codes fall back to the service's English message.
CODE_FIELDS = {
    "name_missing": "full_name",
    "name_too_long": "full_name",
    "bad_kind": "kind",
    "unit_too_long": "unit",
    "bad_date": "date_of_birth",
    "bad_date_of_birth": "date_of_birth",
    "birth_date_conflicts_with_consent": "date_of_birth",
    "phone_too_long": "phone",
    "bad_phone": "phone",
}


def _kind_choices() -> list[tuple[str, Any]]:
    return [(kind.value, KIND_LABELS[kind]) for kind in PersonKind]


class PersonForm(FlaskForm):
    """A person's editable details."""

    full_name = StringField(_l("Full name"), validators=[DataRequired(_l("Enter the person's full name."))])
    kind = SelectField(_l("Kind"), choices=_kind_choices, default=PersonKind.RESIDENT.value)
    unit = StringField(_l("Unit"), validators=[Optional(), Length(max=service.UNIT_MAX)])
    date_of_birth = CalendarDateField(_l("Date of birth"), validators=[Optional()], format="%Y-%m-%d")
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=service.PHONE_MAX)])

    def details(self) -> dict[str, Any]:
        """The submitted details as service keyword arguments."""
        return {
            "full_name": self.full_name.data or "",
            "kind": PersonKind(self.kind.data),
            "unit": self.unit.data,
            "date_of_birth": self.date_of_birth.data,
            "phone": self.phone.data,
        }

    def add_service_error(self, exc: DomainError) -> None:
        """Show a service's refusal next to the field it concerns (or above the form)."""
        name = CODE_FIELDS.get(exc.code)
        message = field_message(exc.code, exc.message)
        if name is None:
            self.form_errors.append(message)
        else:
            target = self[name]
            target.errors = [*target.errors, message]


class CreatePersonForm(PersonForm):
    """A new person's details and site, the access groups they join and a first key card, in one step."""

    site = SelectField(_l("Site"), coerce=int, validators=[DataRequired(_l("Choose the person's site."))])
    groups = SelectMultipleField(_l("Access groups"), coerce=int, validate_choice=False)
    card_uid = StringField(_l("First key card (optional)"), validators=[Optional(), Length(max=64)])


class ImportForm(FlaskForm):
    """A CSV file and the site for rows without a site code."""

    site = SelectField(_l("Site"), coerce=int, validators=[DataRequired(_l("Choose a site."))])
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file to upload."))])


def _sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.name, Site.code)))


def _site_choices(sites: list[Site]) -> list[tuple[int, str]]:
    return [(site.id, f"{site.name} ({site.code})") for site in sites]


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _enum_arg(name: str, enum_cls: Any) -> Any:
    value = request.args.get(name, "")
    return enum_cls(value) if value in {member.value for member in enum_cls} else None


def _helpers() -> dict[str, Any]:
    # Each label translated once per request, not once per row (i18n.label).
    return {
        "kind_label": lambda kind: label(KIND_LABELS, kind) or str(kind),
        "status_label": lambda status: label(STATUS_LABELS, status) or str(status),
        "field_label": lambda name: str(FIELD_LABELS.get(name, name)),
        "error_message": field_message,
    }


@bp.get("")
@require_role(*MANAGERS)
def index() -> ResponseReturnValue:
    """People, searched, filtered and paged by name."""
    query = PeopleQuery(
        q=request.args.get("q", "")[:200],
        site_id=_int_arg("site"),
        kind=_enum_arg("kind", PersonKind),
        status=_enum_arg("status", PersonStatus),
        face=_enum_arg("face", FaceFilter),
        group_id=_int_arg("group"),
        descending=request.args.get("sort") == "-name",
        after=_int_arg("after"),
        before=_int_arg("before"),
    )
    page = service.search_people(db.session, query, PAGE_SIZE)
    sites = _sites()
    groups = db.session.execute(
        select(AccessGroup.id, AccessGroup.name, Site.name.label("site_name"))
        .join(Site, Site.id == AccessGroup.site_id)
        .order_by(Site.name, AccessGroup.name)
    ).all()
    # The filters as they stand, for links that change only the sort or the page.
    kept = {k: v for k, v in request.args.items() if k not in ("after", "before") and v}
    return render_template(
        "people/index.html",
        page=page,
        query=query,
        sites=sites,
        site_names={site.id: site.name for site in sites},
        groups=groups,
        kept=kept,
        kinds=KIND_LABELS,
        statuses=STATUS_LABELS,
        faces=FACE_LABELS,
        **_helpers(),
    )


# Refusals of the one-step create that belong to its extra fields.
CREATE_FIELDS = {"bad_card": "card_uid", "credential_taken": "card_uid", "foreign_group": "groups"}


@bp.route("/new", methods=["GET", "POST"])
@require_role(*MANAGERS)
def create() -> ResponseReturnValue:
    """Register a person, with their access groups and a first key card, in one step (all or nothing)."""
    sites = _sites()
    form = CreatePersonForm()
    form.site.choices = _site_choices(sites)
    groups = list(db.session.scalars(select(AccessGroup).order_by(AccessGroup.site_id, AccessGroup.name).limit(1000)))
    by_id = {g.id: g for g in groups}
    usual = {site.id: usual_group(db.session, site) for site in sites}
    if not form.is_submitted() and sites:
        # The site the form starts on, with its usual group ticked (never the first group by name).
        first = usual.get(sites[0].id)
        form.groups.data = [first.id] if first is not None else []
    if form.validate_on_submit():
        site = db.session.get(Site, form.site.data)
        if site is None:
            abort(404)
        chosen = [by_id[i] for i in form.groups.data or [] if i in by_id]
        try:
            person = register_person(
                db.session,
                Actor.of(current_user._get_current_object()),
                state().keys,
                site,
                groups=chosen,
                card_uid=form.card_uid.data,
                **form.details(),
            )
        except DomainError as exc:
            db.session.rollback()
            name = CREATE_FIELDS.get(exc.code)
            if name is None:
                form.add_service_error(exc)
            else:
                form[name].errors = [*form[name].errors, describe(exc)]
        else:
            db.session.commit()
            flash(_("%(name)s was added.", name=person.full_name), "success")
            return redirect(url_for("person.show", person_id=person.id))
    status = 422 if form.is_submitted() else 200
    site_groups = [(site, [g for g in groups if g.site_id == site.id]) for site in sites]
    return render_template(
        "people/form.html",
        form=form,
        person=None,
        has_sites=bool(sites),
        site_groups=[(site, items) for site, items in site_groups if items],
        usual_groups={site_id: g.id for site_id, g in usual.items() if g is not None},
        **_helpers(),
    ), status


def _person(person_id: int) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        abort(404, _("No person with this id."))
    return person


@bp.route("/<int:person_id>/edit", methods=["GET", "POST"])
@require_role(*MANAGERS)
def edit(person_id: int) -> ResponseReturnValue:
    """Change a person's details (never their site)."""
    person = _person(person_id)
    form = PersonForm(obj=person)
    if request.method == "GET":
        form.kind.data = person.kind.value
    if form.validate_on_submit():
        try:
            changed = service.update_person(
                db.session, Actor.of(current_user._get_current_object()), person, **form.details()
            )
        except DomainError as exc:
            db.session.rollback()
            form.add_service_error(exc)
        else:
            db.session.commit()
            if changed:
                flash(_("The details of %(name)s were saved.", name=person.full_name), "success")
            else:
                flash(_("Nothing was changed."), "info")
            return redirect(url_for("person.show", person_id=person.id))
    status = 422 if form.is_submitted() else 200
    return render_template("people/form.html", form=form, person=person, has_sites=True, **_helpers()), status


@bp.post("/<int:person_id>/move-out")
@require_role(*MANAGERS)
def move_out(person_id: int) -> ResponseReturnValue:
    """Mark a person moved out: doors stop admitting them and their face data is erased."""
    person = _person(person_id)
    try:
        service.move_out(db.session, Actor.of(current_user._get_current_object()), person)
    except DomainError as exc:
        db.session.rollback()
        flash(field_message(exc.code, exc.message), "error")
        return redirect(url_for(".edit", person_id=person.id))
    db.session.commit()
    flash(_("%(name)s has moved out. Doors no longer admit them.", name=person.full_name), "success")
    return redirect(url_for("person.show", person_id=person.id))


@bp.route("/import", methods=["GET", "POST"])
@require_role(*MANAGERS)
def import_start() -> ResponseReturnValue:
    """Upload a CSV of people; every row is checked, then the valid ones are created in the background."""
    sites = _sites()
    form = ImportForm()
    form.site.choices = _site_choices(sites)
    if form.validate_on_submit():
        site = db.session.get(Site, form.site.data)
        if site is None:
            abort(404)
        upload = form.file.data
        try:
            parsed = people_import.parse_csv(db.session, upload.read(), site)
        except DomainError as exc:
            form.file.errors = [*form.file.errors, field_message(exc.code, exc.message)]
        else:
            job = people_import.start_import(
                db.session,
                Actor.of(current_user._get_current_object()),
                current_app._get_current_object(),  # type: ignore[attr-defined]
                site,
                upload.filename or "people.csv",
                parsed,
            )
            return redirect(url_for(".import_status", job_id=job.id))
    status = 422 if form.is_submitted() else 200
    return render_template(
        "people/import.html",
        form=form,
        has_sites=bool(sites),
        max_rows=people_import.MAX_ROWS,
        max_mb=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024),
        required=people_import.REQUIRED_COLUMNS,
        optional=people_import.OPTIONAL_COLUMNS,
    ), status


def _job(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id)
    if job is None:
        abort(404, _("No import with this number."))
    return job


def _job_context(job: ImportJob) -> dict[str, Any]:
    return {
        "job": job,
        "state": people_import.job_state(job),
        "skipped": people_import.skipped_rows(job),
        "site": db.session.get(Site, job.site_id),
        "errors_shown": ERRORS_SHOWN,
        **_helpers(),
    }


@bp.get("/import/<int:job_id>")
@require_role(*MANAGERS)
def import_status(job_id: int) -> ResponseReturnValue:
    """An import's progress (updating itself) and its per-row error report."""
    return render_template("people/import_status.html", **_job_context(_job(job_id)))


@bp.get("/import/<int:job_id>/progress")
@require_role(*MANAGERS)
def import_progress(job_id: int) -> ResponseReturnValue:
    """The progress fragment the status page polls; carries data-final once the job has ended."""
    return render_template("people/_import_progress.html", **_job_context(_job(job_id)))
