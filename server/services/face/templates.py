"""Face templates: stored only under an active, separate consent, sealed at rest, erased with a receipt.

Turning photos into templates (detection, quality gates, embedding) belongs to the face engine; this
module keeps the rules that hold whatever produced the vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import seal, unseal
from server.models import (
    ConsentRecord,
    ErasureReason,
    ErasureReceipt,
    FaceTemplate,
    JournalKind,
    Person,
    PersonStatus,
    utcnow,
)
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import Conflict, RuleViolation
from server.services.face import count as face_count
from server.services.face.consent_rules import require_consent_rules
from server.services.privacy import erasure
from server.services.session import DbSession

MAX_TEMPLATE_BYTES = 8192


def template_context(person_id: int, model_id: str) -> str:
    """Associated data binding a sealed template to its owner and model."""
    return f"template:person={person_id}:model={model_id}"


def require_enrollable(
    person: Person, consent: ConsentRecord | None, at: datetime, model_id: str | None = None
) -> ConsentRecord:
    """`consent`, if a template may be stored under it at `at` (and for `model_id`, if given); else why not.

    The person is active, their site takes face, the consent is theirs, active (not withdrawn, expired or
    stale), given under a notice, and meets the minor rules today; the model is the site's face model.
    """
    site = person.site
    if person.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Face templates can only be stored for people active at the site.", code="inactive")
    if not site.face_enabled:
        raise RuleViolation("Face entry is switched off for this site.", code="face_disabled")
    if consent is None or consent.person_id != person.id:
        raise Conflict(
            "No active face consent for this person: record their (or their guardian's) consent first.",
            code="no_consent",
        )
    if consent.stale_at is not None and consent.withdrawn_at is None:
        raise Conflict(
            "This person's face consent was given under an earlier privacy notice or face model: "
            "show them the current notice and record their consent again.",
            code="consent_stale",
        )
    if not consent.is_active(at):
        raise Conflict(
            "This person's face consent has been withdrawn or has expired: record a new consent first.",
            code="no_consent",
        )
    if consent.notice_id is None:
        raise Conflict(
            "This consent does not name the privacy notice that was shown: record the consent again.",
            code="consent_without_notice",
        )
    require_consent_rules(person, consent, at)
    if model_id is not None and site.face_model_id is not None and model_id != site.face_model_id:
        raise RuleViolation(
            f"This server makes face templates with model {model_id}, but the site uses {site.face_model_id}. "
            "Configure the server with the site's model, or move the site to the new model with "
            "`gatehouse privacy adopt-model` (every consent then has to be renewed).",
            code="face_model_mismatch",
        )
    return consent


def store_template(
    session: DbSession,
    actor: Actor,
    keys: ServerKeys,
    person: Person,
    consent: ConsentRecord,
    model_id: str,
    vector: bytes,
    at: datetime | None = None,
    *,
    quality: Mapping[str, float] | None = None,
) -> FaceTemplate:
    """Keep a face template for a person who has consented; replaces their template of the same model.

    `quality` (figures the enrollment gates measured, never the photo or the vector) goes into the audit entry.
    """
    at = at or utcnow()
    require_enrollable(person, consent, at, model_id)
    if person.site.face_model_id is None:
        # A site switched on without naming a model takes the first one it enrolls with.
        person.site.face_model_id = model_id
    if not vector or len(vector) > MAX_TEMPLATE_BYTES:
        raise RuleViolation("The face template is empty or too large.", code="bad_template")
    for old in [t for t in person.face_templates if t.model_id == model_id]:
        delete_template(session, actor, person, old, ErasureReason.REPLACED)
    session.flush()
    template = FaceTemplate(
        person=person,
        consent_id=consent.id,
        model_id=model_id,
        sealed_vector=seal(keys.template_key, vector, template_context(person.id, model_id)),
    )
    session.add(template)
    session.flush()
    journal.append(
        session,
        person.site_id,
        JournalKind.TEMPLATE_ADD,
        {"person": person.pseudonym, "template": template.id, "model": model_id},
    )
    audit.record(
        session,
        actor,
        "template.add",
        "person",
        person.id,
        site_id=person.site_id,
        details={"model": model_id, **(quality or {})},
    )
    face_count.check_face_count(session)
    return template


def delete_template(
    session: DbSession, actor: Actor, person: Person, template: FaceTemplate, reason: ErasureReason
) -> ErasureReceipt:
    """Erase a template on the server now and on every terminal next (deletions reach terminals first)."""
    entry = journal.append(
        session,
        person.site_id,
        JournalKind.TEMPLATE_DELETE,
        {"person": person.pseudonym, "template": template.id, "model": template.model_id},
    )
    receipt = erasure.open_receipt(session, person, template, reason, entry.seq)
    person.face_templates.remove(template)
    session.delete(template)
    audit.record(
        session,
        actor,
        "template.delete",
        "person",
        person.id,
        site_id=person.site_id,
        details={"template": template.id, "reason": reason.value},
    )
    return receipt


def unseal_vector(keys: ServerKeys, person_id: int, model_id: str, sealed: bytes) -> bytes:
    """The plain template, in memory only, for sealing it again for a terminal."""
    return unseal(keys.template_key, sealed, template_context(person_id, model_id))
