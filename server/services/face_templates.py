"""Face templates: stored only under an active, separate consent, sealed at rest, erased with a receipt.

Turning photos into templates (detection, quality gates, embedding) belongs to the face engine; this
module keeps the rules that hold whatever produced the vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import seal, unseal

from ..models import (
    ConsentRecord,
    ErasureReason,
    ErasureReceipt,
    FaceTemplate,
    JournalKind,
    Person,
    PersonStatus,
    utcnow,
)
from . import audit, erasure, journal
from .audit import Actor
from .errors import RuleViolation
from .session import DbSession

MAX_TEMPLATE_BYTES = 8192


def template_context(person_id: int, model_id: str) -> str:
    """Associated data binding a sealed template to its owner and model."""
    return f"template:person={person_id}:model={model_id}"


def require_enrollable(person: Person, consent: ConsentRecord | None, at: datetime) -> ConsentRecord:
    """`consent`, if the person is active, their site takes face and the consent is theirs and active at `at`."""
    if person.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Face templates can only be stored for people active at the site.", code="inactive")
    if not person.site.face_enabled:
        raise RuleViolation("Face entry is switched off for this site.", code="face_disabled")
    if consent is None or consent.person_id != person.id or not consent.is_active(at):
        raise RuleViolation(
            "No active face consent for this person: record their (or their guardian's) consent first.",
            code="no_consent",
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
    require_enrollable(person, consent, at)
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
