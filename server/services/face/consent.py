"""Separate consent to face entry: giving it (by the person, or a guardian for a minor), declining, withdrawing.

Face is off for everyone until they consent. Declining is recorded so nobody is asked again unless they ask.
Withdrawing takes one call, from any channel consent can be given on, and erases the person's templates on
the server at once and on every terminal next, each with an erasure receipt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from server.models import (
    ConsentChannel,
    ConsentGiver,
    ConsentRecord,
    ErasureReason,
    ErasureReceipt,
    JournalKind,
    Person,
    PersonStatus,
    PrivacyNotice,
    utcnow,
)
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import Conflict, RuleViolation
from server.services.face import templates as face_templates
from server.services.face.consent_rules import active_consent, is_minor, require_consent_rules
from server.services.privacy import privacy
from server.services.session import DbSession


def give_consent(
    session: DbSession,
    actor: Actor,
    person: Person,
    *,
    notice_sha256: str,
    channel: ConsentChannel,
    notice_version: int | None = None,
    given_by: ConsentGiver = ConsentGiver.SELF,
    guardian_name: str | None = None,
    guardian_relationship: str | None = None,
    expires_at: datetime | None = None,
    at: datetime | None = None,
) -> ConsentRecord:
    """Record consent to face entry under the site's current notice, whose hash (and version, if given) the caller
    echoes back.

    Renewing a stale consent puts the person's suspended templates (of the site's face model) back into use.
    """
    at = at or utcnow()
    site = person.site
    if person.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Only people active at the site can consent to face entry.", code="inactive")
    if not site.face_enabled:
        raise RuleViolation(
            "Face entry is switched off for this site; there is nothing to consent to.", code="face_disabled"
        )
    notice = privacy.current_notice(session, site)
    if notice is None:
        raise RuleViolation("The site has no privacy notice yet; consent needs one.", code="notice_missing")
    if notice_sha256 != notice.sha256 or (notice_version is not None and notice_version != notice.version):
        raise Conflict(
            f"The privacy notice shown is not the current one (version {notice.version}): show it and ask again.",
            code="notice_changed",
        )
    if expires_at is not None and expires_at <= at:
        raise RuleViolation("The consent's expiry lies in the past.", code="bad_expiry")
    guardian_name = (guardian_name or "").strip() or None
    guardian_relationship = (guardian_relationship or "").strip() or None
    if given_by is ConsentGiver.GUARDIAN and not (guardian_name and guardian_relationship):
        raise RuleViolation("Guardian consent needs the guardian's name and relationship.", code="guardian_unnamed")
    if active_consent(person, at) is not None:
        raise Conflict("This person's face consent is already active.", code="already_consented")
    consent = ConsentRecord(
        person_id=person.id,
        site_id=site.id,
        notice_id=notice.id,
        notice_sha256=notice.sha256,
        channel=channel,
        operator_id=actor.user_id,
        given_by=given_by,
        guardian_name=guardian_name if given_by is ConsentGiver.GUARDIAN else None,
        guardian_relationship=guardian_relationship if given_by is ConsentGiver.GUARDIAN else None,
        given_at=at,
        expires_at=expires_at,
    )
    require_consent_rules(person, consent, at)
    person.consents.append(consent)
    person.face_declined_at = None
    session.flush()
    resumed = [t for t in person.face_templates if t.model_id == site.face_model_id]
    for template in resumed:
        template.consent_id = consent.id
    if resumed:
        journal.append(session, site.id, JournalKind.FACE_CONSENT, {"person": person.pseudonym, "state": "active"})
    audit.record(
        session,
        actor,
        "consent.give",
        "person",
        person.id,
        site_id=site.id,
        details={
            "consent": consent.id,
            "channel": channel.value,
            "given_by": given_by.value,
            "notice_version": notice.version,
            "templates_resumed": len(resumed),
        },
    )
    return consent


def withdraw_consent(
    session: DbSession, actor: Actor, person: Person, channel: ConsentChannel, at: datetime | None = None
) -> list[ErasureReceipt]:
    """Withdraw face consent: erases every template of the person now, with a receipt per template."""
    at = at or utcnow()
    live = [c for c in person.consents if c.withdrawn_at is None]
    if not live and not person.face_templates:
        raise Conflict("This person has no face consent to withdraw.", code="no_consent")
    for consent in live:
        consent.withdrawn_at = at
        consent.withdrawal_channel = channel
    receipts = [
        face_templates.delete_template(session, actor, person, template, ErasureReason.CONSENT_WITHDRAWN)
        for template in list(person.face_templates)
    ]
    # Withdrawing is also a "no": the person is not asked again unless they ask.
    person.face_declined_at = at
    audit.record(
        session,
        actor,
        "consent.withdraw",
        "person",
        person.id,
        site_id=person.site_id,
        details={"channel": channel.value, "consents": [c.id for c in live], "templates_erased": len(receipts)},
    )
    return receipts


def decline_face(
    session: DbSession, actor: Actor, person: Person, channel: ConsentChannel, at: datetime | None = None
) -> None:
    """Record that the person does not want face entry; they are not asked again unless they ask."""
    at = at or utcnow()
    if active_consent(person, at) is not None:
        raise Conflict("This person has consented; withdraw the consent instead.", code="consent_active")
    if person.face_declined_at is not None:
        raise Conflict("This person has already declined face entry.", code="already_declined")
    person.face_declined_at = at
    audit.record(
        session, actor, "consent.decline", "person", person.id, site_id=person.site_id, details={"channel": channel}
    )


def erase_face(session: DbSession, actor: Actor, person: Person) -> list[ErasureReceipt]:
    """A manager deletes a person's face templates (consent stays; they may enroll again)."""
    if not person.face_templates:
        raise Conflict("This person has no face template to delete.", code="no_template")
    return [
        face_templates.delete_template(session, actor, person, template, ErasureReason.MANAGER)
        for template in list(person.face_templates)
    ]


class FaceState(enum.StrEnum):
    """Where a person stands with face entry, for the console and the app."""

    OFF = "off"  # face entry is switched off at the site
    NOT_ASKED = "not_asked"
    DECLINED = "declined"
    MINOR_NOT_OFFERED = "minor_not_offered"
    STALE = "stale"  # consented under an old notice or model: renew to use face again
    CONSENTED = "consented"  # consent active, no template yet
    ENROLLED = "enrolled"


@dataclass(frozen=True)
class FaceStatus:
    """A person's face state and what the operator may offer next."""

    state: FaceState
    consent: ConsentRecord | None
    notice: PrivacyNotice | None
    # Whether to offer face to this person unprompted (never after a decline).
    offer: bool


def face_status(session: DbSession, person: Person, at: datetime | None = None) -> FaceStatus:
    """The person's face state at `at`."""
    at = at or utcnow()
    site = person.site
    notice = privacy.current_notice(session, site)
    consent = active_consent(person, at)
    if not site.face_enabled:
        return FaceStatus(FaceState.OFF, consent, notice, offer=False)
    if consent is not None:
        has = any(t.model_id == site.face_model_id or site.face_model_id is None for t in person.face_templates)
        return FaceStatus(FaceState.ENROLLED if has else FaceState.CONSENTED, consent, notice, offer=False)
    if is_minor(person, at) and site.no_face_for_minors:
        return FaceStatus(FaceState.MINOR_NOT_OFFERED, None, notice, offer=False)
    if person.face_declined_at is not None:
        return FaceStatus(FaceState.DECLINED, None, notice, offer=False)
    if any(c.withdrawn_at is None and c.stale_at is not None for c in person.consents):
        return FaceStatus(FaceState.STALE, None, notice, offer=True)
    return FaceStatus(FaceState.NOT_ASKED, None, notice, offer=True)
