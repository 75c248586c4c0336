"""People: creation, edits, moving out, and the console's people list."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal_column, not_, or_, select, table, tuple_

from server.models import (
    ConsentRecord,
    Credential,
    CredentialStatus,
    ErasureReason,
    FaceTemplate,
    JournalKind,
    PassStatus,
    Person,
    PersonKind,
    PersonStatus,
    Site,
    VisitorPass,
    access_group_members,
    people_search,
    utcnow,
)
from server.services import audit, journal
from server.services.accounts import app_accounts
from server.services.audit import Actor
from server.services.errors import Conflict, DomainError, RuleViolation
from server.services.face import templates as face_templates
from server.services.face.consent_rules import active_consent, require_consent_rules
from server.services.session import DbSession
from server.services.visitors import passes

# Column sizes of the people table; longer values are refused rather than cut.
NAME_MAX, UNIT_MAX, PHONE_MAX = 200, 64, 32
EDITABLE_FIELDS = ("full_name", "kind", "unit", "date_of_birth", "phone")
_PHONE = re.compile(r"[0-9+\-() .]*")


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
    fields = clean_fields(full_name=full_name, kind=kind, unit=unit, date_of_birth=date_of_birth, phone=phone)
    person = build_person(site, fields)
    session.add(person)
    session.flush()
    audit.record(session, actor, "person.create", "person", person.id, site_id=site.id, details={"kind": kind.value})
    return person


@dataclass(frozen=True)
class FieldError:
    """One reason a person's details are refused: which field, a short code and an explanation."""

    field: str
    code: str
    message: str


def field_errors(**fields: Any) -> list[FieldError]:
    """Every rule the given person fields break (only the fields passed are checked)."""
    found: list[FieldError] = []
    if "full_name" in fields:
        name = (fields["full_name"] or "").strip()
        if not name:
            found.append(FieldError("full_name", "name_missing", "A person needs a name."))
        elif len(name) > NAME_MAX:
            found.append(FieldError("full_name", "name_too_long", f"The name is longer than {NAME_MAX} characters."))
    if "kind" in fields and not _is_kind(fields["kind"]):
        found.append(FieldError("kind", "bad_kind", "The kind must be resident, staff or visitor."))
    if "unit" in fields and len((fields["unit"] or "").strip()) > UNIT_MAX:
        found.append(FieldError("unit", "unit_too_long", f"The unit is longer than {UNIT_MAX} characters."))
    if "date_of_birth" in fields:
        born = fields["date_of_birth"]
        if born is not None and not isinstance(born, date):
            found.append(FieldError("date_of_birth", "bad_date", "The date of birth is not a date."))
        elif born is not None and born > date.today():
            found.append(FieldError("date_of_birth", "bad_date_of_birth", "The date of birth lies in the future."))
    if "phone" in fields:
        phone = (fields["phone"] or "").strip()
        if len(phone) > PHONE_MAX:
            found.append(
                FieldError("phone", "phone_too_long", f"The phone number is longer than {PHONE_MAX} characters.")
            )
        elif not _PHONE.fullmatch(phone):
            found.append(
                FieldError("phone", "bad_phone", "A phone number may hold digits, spaces, +, -, ( ) and dots only.")
            )
    return found


def _is_kind(value: object) -> bool:
    return isinstance(value, str) and value in {kind.value for kind in PersonKind}


def clean_fields(**fields: Any) -> dict[str, Any]:
    """The fields normalised (trimmed, empty as None, kind as PersonKind); RuleViolation for the first broken rule."""
    errors = field_errors(**fields)
    if errors:
        raise RuleViolation(errors[0].message, code=errors[0].code)
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "full_name":
            cleaned[name] = value.strip()
        elif name in ("unit", "phone"):
            cleaned[name] = (value or "").strip() or None
        elif name == "kind":
            cleaned[name] = PersonKind(value)
        else:
            cleaned[name] = value
    return cleaned


def build_person(site: Site, fields: dict[str, Any]) -> Person:
    """A new Person from already cleaned fields (not added to a session, not audited)."""
    return Person(site=site, pseudonym=new_pseudonym(), **fields)


def update_person(session: DbSession, actor: Actor, person: Person, **fields: Any) -> list[str]:
    """Change a person's details; returns the names of the fields that changed. A person never changes site."""
    if "site" in fields or "site_id" in fields:
        raise RuleViolation(
            "A person cannot move to another site: move them out here and register them at the new site.",
            code="site_fixed",
        )
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise RuleViolation(f"These details cannot be edited: {', '.join(unknown)}.", code="unknown_field")
    cleaned = clean_fields(**fields)
    changed = [name for name in EDITABLE_FIELDS if name in cleaned and getattr(person, name) != cleaned[name]]
    if "date_of_birth" in changed:
        _check_birth_date_against_consent(person, cleaned["date_of_birth"])
    for name in changed:
        setattr(person, name, cleaned[name])
    if "phone" in changed:
        app_accounts.sync_phone(session, person)
    if "kind" in changed:
        # Terminals decide by kind under a lockdown and past the offline bound (staff only): they must learn it.
        journal.append(
            session, person.site_id, JournalKind.PERSON_STATUS, {"person": person.pseudonym, "kind": person.kind.value}
        )
    if changed:
        # Field names only: the audit log must not become a second copy of personal data.
        audit.record(
            session, actor, "person.update", "person", person.id, site_id=person.site_id, details={"fields": changed}
        )
    return changed


def _check_birth_date_against_consent(person: Person, born: date | None) -> None:
    """Refuse a birth date that the person's active face consent would not have been valid for."""
    consent = active_consent(person)
    if consent is None:
        return
    old = person.date_of_birth
    person.date_of_birth = born
    try:
        require_consent_rules(person, consent, utcnow())
    except DomainError:
        raise RuleViolation(
            "This date of birth does not fit the person's face consent (a minor needs a guardian's consent). "
            "Withdraw the face consent first, then change the date of birth.",
            code="birth_date_conflicts_with_consent",
        ) from None
    finally:
        person.date_of_birth = old


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


# ---- the console's people list ------------------------------------------------------------------------------


class FaceFilter(enum.StrEnum):
    """Face states the people list can filter on; together they cover everyone."""

    ENROLLED = "enrolled"  # has a face template
    CONSENTED = "consented"  # active consent, no template yet
    NONE = "none"  # neither


@dataclass(frozen=True)
class PeopleQuery:
    """What the people list shows: search text, filters, sort order and a keyset cursor (a person id)."""

    q: str = ""
    site_id: int | None = None
    kind: PersonKind | None = None
    status: PersonStatus | None = None
    face: FaceFilter | None = None
    group_id: int | None = None
    descending: bool = False
    after: int | None = None
    before: int | None = None


@dataclass(frozen=True)
class PersonRow:
    """One line of the people list."""

    id: int
    full_name: str
    unit: str | None
    kind: PersonKind
    status: PersonStatus
    site_id: int
    credentials: int
    face: bool


@dataclass(frozen=True)
class PeoplePage:
    """A page of the list and the cursors of its neighbours (None where there is none)."""

    rows: list[PersonRow]
    next_after: int | None
    prev_before: int | None


def _filters(query: PeopleQuery, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    text = query.q.strip()
    if text:
        if dialect == "sqlite":
            # SQLite's LIKE already ignores (ASCII) case, exactly as far as its lower() does: skip lower() per row.
            name = Person.full_name.contains(text, autoescape=True)
            unit = Person.unit.startswith(text, autoescape=True)
            if len(text) >= people_search.MIN_CHARS:
                # The trigram index finds every row holding the text (and a few more: it folds all case); the
                # LIKE conditions below keep exactly the rows that match.
                found: Select[tuple[Any]] = (
                    select(literal_column("rowid"))
                    .select_from(table(people_search.TABLE))
                    .where(literal_column(people_search.TABLE).op("MATCH")(people_search.phrase(text)))
                )
                where.append(Person.id.in_(found))
        else:
            name = Person.full_name.icontains(text, autoescape=True)
            unit = Person.unit.istartswith(text, autoescape=True)
        where.append(or_(name, unit, Person.phone.contains(text, autoescape=True)))
    if query.site_id is not None:
        where.append(Person.site_id == query.site_id)
    if query.kind is not None:
        where.append(Person.kind == query.kind)
    if query.status is not None:
        where.append(Person.status == query.status)
    if query.group_id is not None:
        where.append(
            exists().where(
                access_group_members.c.person_id == Person.id, access_group_members.c.group_id == query.group_id
            )
        )
    if query.face is not None:
        has_template = exists().where(FaceTemplate.person_id == Person.id)
        now = utcnow()
        has_consent = exists().where(
            ConsentRecord.person_id == Person.id,
            ConsentRecord.withdrawn_at.is_(None),
            ConsentRecord.stale_at.is_(None),
            or_(ConsentRecord.expires_at.is_(None), ConsentRecord.expires_at > now),
        )
        if query.face is FaceFilter.ENROLLED:
            where.append(has_template)
        elif query.face is FaceFilter.CONSENTED:
            where.append(and_(has_consent, not_(has_template)))
        else:
            where.append(and_(not_(has_consent), not_(has_template)))
    return where


def search_people(session: DbSession, query: PeopleQuery, limit: int = 50) -> PeoplePage:
    """A page of people sorted by name (then id), keyset-paged, with credential counts and face badges."""
    key = tuple_(Person.full_name, Person.id)
    forward = query.before is None
    anchor_id = query.after if forward else query.before
    anchor = None
    if anchor_id is not None:
        anchor = session.execute(select(Person.full_name, Person.id).where(Person.id == anchor_id)).first()
    if anchor is None:
        # No cursor, or a cursor naming nobody (deleted meanwhile, or typed by hand): start at the beginning.
        forward = True
    stmt = select(Person.id, Person.full_name, Person.unit, Person.kind, Person.status, Person.site_id)
    dialect = session.get_bind().dialect.name
    stmt = stmt.where(*_filters(query, dialect))
    # Walking backwards means reading in the opposite order and flipping the page afterwards.
    ascending = forward != query.descending
    if anchor is not None:
        mark = tuple_(anchor.full_name, anchor.id)
        stmt = stmt.where(key > mark if ascending else key < mark)
    name: ColumnElement[str] = Person.full_name.expression
    if query.q.strip():
        # A text search finds its rows by the trigram indexes (or reads every row, under three characters); sorting
        # an expression stops the planner from walking the name-order index instead until it has a page, which it
        # takes for cheaper when many match: PostgreSQL spent 220 ms so on "Wang" at 100,000 people, against 9 ms.
        name = Person.full_name + ""
    order = (name, Person.id) if ascending else (name.desc(), Person.id.desc())
    found = list(session.execute(stmt.order_by(*order).limit(limit + 1)).all())
    more = len(found) > limit
    found = found[:limit]
    if not forward:
        if not more:
            # Back at the start: show a full first page rather than the short remainder.
            return search_people(session, replace(query, before=None, after=None), limit)
        found.reverse()
    ids = [row.id for row in found]
    counts = _credential_counts(session, ids)
    faces = _with_face(session, ids)
    rows = [
        PersonRow(r.id, r.full_name, r.unit, r.kind, r.status, r.site_id, counts.get(r.id, 0), r.id in faces)
        for r in found
    ]
    if forward:
        next_after = rows[-1].id if more and rows else None
        prev_before = rows[0].id if anchor is not None and rows else None
    else:
        next_after = rows[-1].id if rows else None
        prev_before = rows[0].id if rows else None
    return PeoplePage(rows, next_after, prev_before)


def _credential_counts(session: DbSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    stmt = (
        select(Credential.person_id, func.count())
        .where(Credential.person_id.in_(ids), Credential.status == CredentialStatus.ACTIVE)
        .group_by(Credential.person_id)
    )
    return {person_id: count for person_id, count in session.execute(stmt)}


def _with_face(session: DbSession, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(session.scalars(select(FaceTemplate.person_id).where(FaceTemplate.person_id.in_(ids)).distinct()))
