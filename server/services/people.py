"""People: creation, edits and moving out."""

from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import select

from ..models import (
    ErasureReason,
    JournalKind,
    PassStatus,
    Person,
    PersonKind,
    PersonStatus,
    Site,
    VisitorPass,
    utcnow,
)
from . import audit, face_templates, journal, passes
from .audit import Actor
from .errors import Conflict, RuleViolation
from .session import DbSession


def new_pseudonym() -> str:
    """A random id that stands for a person on terminals and in events."""
    return "p-" + secrets.token_hex(8)


def create_person(
    session: DbSession,
    actor: Actor,
    site: Site,
    *,
    full_name: str,
    kind: PersonKind = PersonKind.RESIDENT,
    unit: str | None = None,
    date_of_birth: date | None = None,
    phone: str | None = None,
) -> Person:
    """Register a person. Nobody is enrolled for face by creating them; face stays off until they consent."""
    full_name = full_name.strip()
    if not full_name:
        raise RuleViolation("A person needs a name.", code="name_missing")
    if date_of_birth is not None and date_of_birth > date.today():
        raise RuleViolation("The date of birth lies in the future.", code="bad_date_of_birth")
    person = Person(
        site=site,
        pseudonym=new_pseudonym(),
        full_name=full_name,
        kind=kind,
        unit=(unit or "").strip() or None,
        date_of_birth=date_of_birth,
        phone=(phone or "").strip() or None,
    )
    session.add(person)
    session.flush()
    audit.record(session, actor, "person.create", "person", person.id, site_id=site.id, details={"kind": kind.value})
    return person


def move_out(session: DbSession, actor: Actor, person: Person) -> None:
    """Mark a person moved out: terminals stop admitting them and their face templates are erased."""
    if person.status is PersonStatus.MOVED_OUT:
        raise Conflict("This person has already moved out.", code="already_moved_out")
    person.status = PersonStatus.MOVED_OUT
    person.moved_out_at = utcnow()
    # Deletions are journalled before the status change so terminals erase before anything else.
    for template in list(person.face_templates):
        face_templates.delete_template(session, actor, person, template, ErasureReason.MOVED_OUT)
    journal.append(
        session, person.site_id, JournalKind.PERSON_STATUS, {"person": person.pseudonym, "status": "moved_out"}
    )
    # Visitors invited by someone who has left are not let in on that invitation.
    for visitor_pass in session.scalars(
        select(VisitorPass).where(VisitorPass.host_id == person.id, VisitorPass.status == PassStatus.ACTIVE)
    ):
        passes.revoke_pass(session, actor, visitor_pass)
    audit.record(session, actor, "person.move_out", "person", person.id, site_id=person.site_id)


def deactivate(session: DbSession, actor: Actor, person: Person) -> None:
    """Suspend a person: terminals stop admitting them and their face templates are erased (not suspended)."""
    if person.status is not PersonStatus.ACTIVE:
        raise Conflict("Only an active person can be deactivated.", code="not_active")
    person.status = PersonStatus.SUSPENDED
    # As at move-out: deletions first, so terminals erase before they learn anything else.
    for template in list(person.face_templates):
        face_templates.delete_template(session, actor, person, template, ErasureReason.DEACTIVATED)
    journal.append(
        session, person.site_id, JournalKind.PERSON_STATUS, {"person": person.pseudonym, "status": "suspended"}
    )
    audit.record(session, actor, "person.deactivate", "person", person.id, site_id=person.site_id)
