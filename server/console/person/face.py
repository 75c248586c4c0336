"""Console: the face part of a person's page: consent, decline, photo enrollment, withdrawal and its receipt."""

from __future__ import annotations

from flask import abort, flash, render_template
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, RadioField, StringField

from server.console.person.common import actor, back, bp, helpers, load_person, refused, render_person, terminal_names
from server.console.person.words import gate_thresholds, gates
from server.console.roles import MANAGERS, require_role
from server.extensions import db
from server.models import ConsentChannel, ConsentGiver, ErasureReceipt
from server.services.errors import DomainError
from server.services.face import consent
from server.services.face.enrollment import PhotoRejected, enroll_from_upload, quality_figures
from server.services.wording.operators import describe
from server.state import state


def _thresholds() -> dict[str, float | None]:
    """The gates' thresholds of this server's engine (loaded by the upload that needs them)."""
    engine = state().face
    return gate_thresholds(engine.limits, engine.model().enroll_score)


class ConsentForm(FlaskForm):
    """Consent to face entry: who gives it, the guardian if it is one, and the notice that was shown."""

    given_by = RadioField(choices=[giver.value for giver in ConsentGiver], default=ConsentGiver.SELF.value)
    guardian_name = StringField(default="")
    guardian_relationship = StringField(default="")
    notice_sha256 = HiddenField(default="")


class PhotoForm(FlaskForm):
    """A photo of the face to enroll (person/_face.html draws the fields)."""

    photo = FileField(validators=[FileRequired()])


@bp.post("/<int:person_id>/face/consent")
@require_role(*MANAGERS)
def give_consent(person_id: int) -> ResponseReturnValue:
    """Record consent to face entry under the notice the operator showed (by the person or their guardian)."""
    person = load_person(person_id)
    form = ConsentForm()
    values = {
        "given_by": form.given_by.data or "",
        "guardian_name": form.guardian_name.data or "",
        "guardian_relationship": form.guardian_relationship.data or "",
    }
    if not form.validate_on_submit():
        return render_person(person, status=422, errors={"consent": _("Choose who gives the consent.")}, values=values)
    try:
        consent.give_consent(
            db.session,
            actor(),
            person,
            notice_sha256=form.notice_sha256.data or "",
            channel=ConsentChannel.CONSOLE,
            given_by=ConsentGiver(form.given_by.data),
            guardian_name=values["guardian_name"],
            guardian_relationship=values["guardian_relationship"],
        )
    except DomainError as exc:
        field = "guardian" if exc.code == "guardian_unnamed" else "consent"
        return refused(person, field, exc, values)
    db.session.commit()
    flash(_("Consent to face entry recorded."), "success")
    return back(person)


@bp.post("/<int:person_id>/face/decline")
@require_role(*MANAGERS)
def decline(person_id: int) -> ResponseReturnValue:
    """Record that the person does not want face entry (they are not asked again)."""
    person = load_person(person_id)
    try:
        consent.decline_face(db.session, actor(), person, ConsentChannel.CONSOLE)
    except DomainError as exc:
        return refused(person, "decline", exc)
    db.session.commit()
    flash(_("Recorded that they declined face entry."), "success")
    return back(person)


@bp.post("/<int:person_id>/face/photo")
@require_role(*MANAGERS)
def upload_photo(person_id: int) -> ResponseReturnValue:
    """Make a face template from an uploaded photo, held in memory for this request only."""
    person = load_person(person_id)
    form = PhotoForm()
    if not form.validate_on_submit():
        return render_person(person, status=422, errors={"photo": _("Choose a photo of the face to upload.")})
    upload = form.photo.data
    try:
        enrolled = enroll_from_upload(
            db.session, actor(), state().keys, state().face, person, upload.stream, channel=ConsentChannel.CONSOLE
        )
    except PhotoRejected as exc:
        figures = gates(quality_figures(exc.report), _thresholds()) if exc.report is not None else None
        db.session.rollback()
        return render_person(person, status=422, errors={"photo": describe(exc)}, rejected_gates=figures)
    except DomainError as exc:
        return refused(person, "photo", exc)
    finally:
        upload.close()
    db.session.commit()
    # Only the measured numbers travel to the next page: never the photo, never the template.
    cookie_session["face_report"] = {
        "person": person.id,
        "figures": quality_figures(enrolled.report),
        "thresholds": _thresholds(),
    }
    return back(person)


@bp.post("/<int:person_id>/face/withdraw")
@require_role(*MANAGERS)
def withdraw(person_id: int) -> ResponseReturnValue:
    """Withdraw face consent: the person's templates are erased now, with a receipt per template."""
    person = load_person(person_id)
    try:
        receipts = consent.withdraw_consent(db.session, actor(), person, ConsentChannel.CONSOLE)
    except DomainError as exc:
        return refused(person, "withdraw", exc)
    db.session.commit()
    if receipts:
        flash(_("Consent withdrawn; face data erased on the server. Terminals confirm below."), "success")
    else:
        flash(_("Consent withdrawn; there was no face template to erase."), "success")
    return back(person)


@bp.get("/<int:person_id>/receipts/<int:receipt_id>")
@require_role(*MANAGERS)
def receipt(person_id: int, receipt_id: int) -> ResponseReturnValue:
    """Fragment: an erasure receipt, terminal by terminal (polled until every terminal has confirmed)."""
    person = load_person(person_id)
    found = db.session.get(ErasureReceipt, receipt_id)
    if found is None or found.person_id != person.id:
        abort(404, _("No such erasure receipt for this person."))
    names = terminal_names({c.terminal_id for c in found.confirmations})
    return render_template(
        "person/_receipt.html", receipt=found, receipt_terminals=names, person=person, **helpers(person)
    )
