"""Face consent (status, notice, give, withdraw, decline) and selfie enrollment where the site allows it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Response

from mobile_api.auth import resident, resident_blueprint
from mobile_api.responses import reply
from mobile_api.schemas.common import ApiError
from mobile_api.schemas.face import (
    ConsentGive,
    ConsentOut,
    FaceStatus,
    NoticeOut,
    NoticeReadingOut,
    NoticeRef,
    NoticeSectionOut,
    PhotoEnrolled,
    PhotoForm,
    QualityOut,
    TemplateOut,
    Withdrawn,
)
from mobile_api.schemas.records import ReceiptOut
from mobile_api.state import mobile
from server.extensions import db
from server.models import ConsentChannel, Person, PrivacyNotice, Site, utcnow
from server.services.accounts.app_accounts import resident_actor
from server.services.errors import DomainError, NotFound, RuleViolation
from server.services.face import consent
from server.services.face.enrollment import (
    FaceUnavailable,
    PhotoTooLarge,
    app_enrollment_allowed,
    enroll_from_upload,
    quality_figures,
)
from server.services.people import resident_records
from server.services.privacy import erasure, privacy
from server.services.wording.residents import for_resident

bp = resident_blueprint("face", __name__, "Face")
log = logging.getLogger(__name__)


class UploadTooLarge(DomainError):
    """The uploaded photo is over the configured size limit (the API answers this with HTTP's own 413)."""

    code = "too_large"
    http_status = 413


class AppRefusal(DomainError):
    """A service's refusal, worded for the resident rather than for an operator (same code and status)."""

    def __init__(self, original: DomainError, message: str) -> None:
        super().__init__(message, code=original.code)
        self.http_status = original.http_status


@contextmanager
def resident_wording(site: Site) -> Iterator[None]:
    """Re-word the services' operator-facing refusals for the resident; codes and statuses stay the same."""
    try:
        yield
    except DomainError as exc:
        message = for_resident(exc, minor_age=site.minor_age)
        if message is None:
            raise
        raise AppRefusal(exc, message) from exc


def face_status(person: Person) -> FaceStatus:
    """The resident's face state, consent, notice and templates (ids only)."""
    status = consent.face_status(db.session, person)
    site = person.site
    given = status.consent
    notice = db.session.get(PrivacyNotice, given.notice_id) if given is not None and given.notice_id else None
    pending = sum(1 for r in erasure.receipts_of_person(db.session, person.id) if not r.complete)
    return FaceStatus(
        state=status.state,
        offer=status.offer,
        site_face_enabled=site.face_enabled,
        app_enrollment_allowed=app_enrollment_allowed(site),
        consent=None
        if given is None
        else ConsentOut(
            id=given.id,
            given_at=given.given_at,
            given_by=given.given_by,
            channel=given.channel,
            notice_version=notice.version if notice is not None else None,
            expires_at=given.expires_at,
        ),
        notice=None if status.notice is None else NoticeRef(version=status.notice.version, sha256=status.notice.sha256),
        templates=[
            TemplateOut(id=t.id, model_id=t.model_id, created_at=t.created_at)
            for t in sorted(person.face_templates, key=lambda t: t.id)
        ],
        erasures_pending=pending,
    )


@bp.get(
    "/me/face",
    responses={200: FaceStatus},
    summary="Face entry status",
    description="Where you stand with face entry (always optional): consent, the current privacy notice, your "
    "templates (ids only, never their contents) and erasures terminals have not confirmed yet.",
)
def get_status() -> tuple[Response, int]:
    return reply(face_status(resident().person))


@bp.get(
    "/me/face/notice",
    responses={200: NoticeOut, 404: ApiError},
    summary="The privacy notice for face entry",
    description="The exact text to show before asking for consent, with the version and hash to echo back when "
    "consenting, and the same notice by language (readings: en, zh) with headings in that language. "
    "422 face_disabled if the site does not use face entry; 404 notice_missing if it has no notice.",
)
def get_notice() -> tuple[Response, int]:
    site = resident().person.site
    if not site.face_enabled:
        raise RuleViolation(
            "Face entry is switched off at this site; there is nothing to consent to.", code="face_disabled"
        )
    notice = privacy.current_notice(db.session, site)
    if notice is None:
        raise NotFound("This site has not published a privacy notice for face entry yet.", code="notice_missing")
    readings = [
        NoticeReadingOut(
            lang=reading.lang,
            title=reading.title,
            sections=[NoticeSectionOut(key=s.key, heading=s.heading, text=s.text) for s in reading.sections],
            closing=reading.closing,
        )
        for reading in privacy.readings(notice).values()
    ]
    return reply(
        NoticeOut(
            version=notice.version,
            sha256=notice.sha256,
            text=notice.text,
            published_at=notice.published_at,
            readings=readings,
        )
    )


@bp.post(
    "/me/face/consent",
    responses={201: FaceStatus, 409: ApiError},
    summary="Consent to face entry",
    description="Give your own consent under the notice you were shown: echo its version and sha256 from "
    "/me/face/notice. 409 notice_changed if it is no longer the current one, 409 already_consented if your "
    "consent is active; a minor is refused (guardian_consent_needed or minor_face_off): a guardian consents at "
    "the management office.",
)
def give_consent(body: ConsentGive) -> tuple[Response, int]:
    person = resident().person
    site = person.site
    with resident_wording(site):
        consent.give_consent(
            db.session,
            resident_actor(person),
            person,
            notice_sha256=body.notice_sha256,
            notice_version=body.notice_version,
            channel=ConsentChannel.APP,
        )
    db.session.commit()
    return reply(face_status(person), 201)


@bp.delete(
    "/me/face/consent",
    responses={200: Withdrawn, 409: ApiError},
    summary="Withdraw face consent",
    description="One call, no confirmation: your consent ends and every face template of yours is erased on the "
    "server now and on every terminal next; each erasure has a receipt listing the terminals and when each "
    "confirmed. 409 no_consent if there is nothing to withdraw.",
)
def withdraw_consent() -> tuple[Response, int]:
    person = resident().person
    at = utcnow()
    with resident_wording(person.site):
        receipts = consent.withdraw_consent(db.session, resident_actor(person), person, ConsentChannel.APP, at=at)
    db.session.commit()
    state = consent.face_status(db.session, person).state
    erased = {r.id for r in receipts}
    rows = [r for r in resident_records.receipts_of(db.session, person) if r.id in erased]
    return reply(Withdrawn(withdrawn_at=at, receipts=[ReceiptOut.of(r) for r in rows], state=state))


@bp.post(
    "/me/face/decline",
    responses={200: FaceStatus, 409: ApiError},
    summary="Decline face entry",
    description="Record that you do not want face entry; the app does not offer it again unless you ask. "
    "409 consent_active if you have consented (withdraw instead), 409 already_declined.",
)
def decline() -> tuple[Response, int]:
    person = resident().person
    with resident_wording(person.site):
        consent.decline_face(db.session, resident_actor(person), person, ConsentChannel.APP)
    db.session.commit()
    return reply(face_status(person))


@bp.post(
    "/me/face/photo",
    responses={201: PhotoEnrolled, 403: ApiError, 409: ApiError, 413: ApiError, 429: ApiError, 503: ApiError},
    summary="Enroll your face from a selfie",
    description="multipart/form-data with the photo in field 'photo'. Only at sites that allow app enrollment "
    "(403 app_enrollment_off otherwise) and after consent (409 no_consent / consent_stale). The photo is used "
    "for this request only and never stored; a template is made from it and stored sealed. A photo that fails a "
    "check answers 422 photo_<reason> with what to change (photo_too_large over the pixel limit, 12 MP by default, "
    "refused from the header); 413 too_large over the size limit; 429 over the uploads allowed per resident "
    "(10 an hour by default); 503 face_unavailable if this server has no face engine.",
)
def upload_photo(form: PhotoForm) -> tuple[Response, int]:
    person = resident().person
    upload = form.photo
    try:
        with resident_wording(person.site):
            try:
                enrolled = enroll_from_upload(
                    db.session,
                    resident_actor(person),
                    mobile().keys,
                    mobile().face,
                    person,
                    upload.stream,
                    channel=ConsentChannel.APP,
                    max_pixels=mobile().config.selfie_max_pixels,
                )
            except FaceUnavailable as exc:
                # What to fix is for the operator's log; the resident learns where else to go.
                log.warning("selfie enrollment unavailable: %s", exc.message)
                raise
            except PhotoTooLarge as exc:
                raise UploadTooLarge(
                    f"The photo is larger than {exc.max_bytes / 1_000_000:g} MB: send a smaller one."
                ) from exc
    finally:
        upload.close()
    db.session.commit()
    return reply(
        PhotoEnrolled(
            template_id=enrolled.template.id,
            model_id=enrolled.template.model_id,
            quality=QualityOut(**quality_figures(enrolled.report)),
        ),
        201,
    )
