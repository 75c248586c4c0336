"""Subject access (PIPL art. 45, GDPR art. 15): everything held about a person, never a template or an image.

`subject_access` returns a plain JSON-able dict (ISO 8601 datetimes in UTC, no bytes) of this shape,
format "gatehouse.subject_access/1":

    format, generated_at
    controller: site_name, site_code, controller_name, contact, privacy_notice_version, privacy_notice_published_at
    person: id, pseudonym, full_name, kind, unit, date_of_birth, phone, status, created_at, moved_out_at,
        face_declined_at
    credentials: [id, kind, status, created_at, revoked_at]
    access_groups: [id, name, doors: [door name]]
    face:
        consents: [id, notice_version, notice_sha256, channel, given_by, guardian_name, guardian_relationship,
            given_at, expires_at, withdrawn_at, withdrawal_channel, stale_at, stale_reason, operator]
        templates: [id, model_id, created_at, last_matched_at, held_on_server (true), held_on_terminals]
        erasures: [template_id, model_id, reason, erased_on_server_at, complete,
            confirmations: [terminal, terminal_ident, confirmed_at, confirmed_by], held_on_terminals]
        where held_on_terminals is [terminal, terminal_ident, site, sent_at]
    visitor_passes_hosted: [id, visitor_name, valid_from, valid_until, uses_allowed, uses_count, status]
    access_events: [occurred_at, door, terminal, method, decision, reason], newest first, at most `event_limit`
    access_events_total: how many the server holds (more than listed when the list was capped)
    audit: [at, actor_label, action, details], newest first, entries whose target is this person
    retention: event_retention_days, visitor_retention_days, template_unused_days
    notes: credentials, face, access_events (plain-English remarks for the reader)

Templates, credentials and passes are read column by column: the sealed vector, credential hashes, sealed
seeds and pass-code hashes are never loaded, so no change to this module can leak them by accident.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from server.models import (
    AccessEvent,
    AuditEntry,
    ConsentRecord,
    ConsoleUser,
    Credential,
    Door,
    ErasureReceipt,
    FaceTemplate,
    Person,
    PrivacyNotice,
    Site,
    TemplateHolding,
    Terminal,
    VisitorPass,
    utcnow,
)
from server.services import audit
from server.services.audit import Actor
from server.services.errors import RuleViolation
from server.services.privacy.erasure import receipts_of_person
from server.services.session import DbSession

FORMAT = "gatehouse.subject_access/1"
# Years of door events can run to hundreds of thousands of rows; the newest this many are listed, with the total.
MAX_EVENTS = 10_000
EXPORT_FORMATS = ("json", "html")

CREDENTIALS_NOTE = (
    "Key cards and ID documents are held only as keyed hashes of their numbers, and app-code seeds only "
    "encrypted; neither the numbers nor the seeds can be read back, so they are not part of this report."
)
FACE_NOTE = (
    "Face templates are held encrypted on the server and on the door terminals listed. This report says where "
    "and since when each is held, but never contains a template or a photo; photos are never stored, and no "
    "role or endpoint can export templates."
)

Json = dict[str, Any]


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _value(member: enum.Enum | None) -> Any:
    return None if member is None else member.value


def subject_access(
    session: DbSession, person: Person, at: datetime | None = None, *, event_limit: int = MAX_EVENTS
) -> Json:
    """Everything the server holds about `person`, as a JSON-able dict (shape in the module docstring)."""
    at = at or utcnow()
    site = person.site
    events, events_total = _access_events(session, person, event_limit)
    return {
        "format": FORMAT,
        "generated_at": _iso(at),
        "controller": _controller(session, site),
        "person": _person(person),
        "credentials": _credentials(session, person),
        "access_groups": [
            {"id": g.id, "name": g.name, "doors": sorted(d.name for d in g.doors)}
            for g in sorted(person.access_groups, key=lambda g: g.id)
        ],
        "face": _face(session, person),
        "visitor_passes_hosted": _passes(session, person),
        "access_events": events,
        "access_events_total": events_total,
        "audit": _audit(session, person),
        "retention": {
            "event_retention_days": site.event_retention_days,
            "visitor_retention_days": site.visitor_retention_days,
            "template_unused_days": site.template_unused_days,
        },
        "notes": {
            "credentials": CREDENTIALS_NOTE,
            "face": FACE_NOTE,
            "access_events": _events_note(len(events), events_total),
        },
    }


def export(session: DbSession, actor: Actor, person: Person, fmt: str, at: datetime | None = None) -> Json:
    """The report for an export in `fmt` ("json" or "html"), recorded in the audit log in the caller's transaction."""
    if fmt not in EXPORT_FORMATS:
        raise RuleViolation(f"A subject access report is made as {' or '.join(EXPORT_FORMATS)}.", code="bad_format")
    report = subject_access(session, person, at)
    audit.record(
        session, actor, "person.subject_access", "person", person.id, site_id=person.site_id, details={"format": fmt}
    )
    return report


def _controller(session: DbSession, site: Site) -> Json:
    notice = session.execute(
        select(PrivacyNotice.version, PrivacyNotice.controller, PrivacyNotice.contact, PrivacyNotice.published_at)
        .where(PrivacyNotice.site_id == site.id)
        .order_by(PrivacyNotice.version.desc())
        .limit(1)
    ).first()
    return {
        "site_name": site.name,
        "site_code": site.code,
        "controller_name": notice.controller if notice else None,
        "contact": notice.contact if notice else None,
        "privacy_notice_version": notice.version if notice else None,
        "privacy_notice_published_at": _iso(notice.published_at) if notice else None,
    }


def _person(person: Person) -> Json:
    return {
        "id": person.id,
        "pseudonym": person.pseudonym,
        "full_name": person.full_name,
        "kind": _value(person.kind),
        "unit": person.unit,
        "date_of_birth": _iso(person.date_of_birth),
        "phone": person.phone,
        "status": _value(person.status),
        "created_at": _iso(person.created_at),
        "moved_out_at": _iso(person.moved_out_at),
        "face_declined_at": _iso(person.face_declined_at),
    }


def _credentials(session: DbSession, person: Person) -> list[Json]:
    rows = session.execute(
        select(Credential.id, Credential.kind, Credential.status, Credential.created_at, Credential.revoked_at)
        .where(Credential.person_id == person.id)
        .order_by(Credential.created_at, Credential.id)
    )
    return [
        {
            "id": r.id,
            "kind": _value(r.kind),
            "status": _value(r.status),
            "created_at": _iso(r.created_at),
            "revoked_at": _iso(r.revoked_at),
        }
        for r in rows
    ]


def _face(session: DbSession, person: Person) -> Json:
    # Columns only: the sealed vector never leaves the database for this report.
    templates = session.execute(
        select(FaceTemplate.id, FaceTemplate.model_id, FaceTemplate.created_at, FaceTemplate.last_matched_at)
        .where(FaceTemplate.person_id == person.id)
        .order_by(FaceTemplate.created_at, FaceTemplate.id)
    ).all()
    receipts = receipts_of_person(session, person.id)
    held = _holdings(session, [t.id for t in templates] + [r.template_id for r in receipts])
    terminals = _terminal_names(session, {c.terminal_id for r in receipts for c in r.confirmations})
    return {
        "consents": _consents(session, person),
        "templates": [
            {
                "id": t.id,
                "model_id": t.model_id,
                "created_at": _iso(t.created_at),
                "last_matched_at": _iso(t.last_matched_at),
                "held_on_server": True,
                "held_on_terminals": held.get(t.id, []),
            }
            for t in templates
        ],
        "erasures": [_erasure(r, terminals, held.get(r.template_id, [])) for r in receipts],
    }


def _consents(session: DbSession, person: Person) -> list[Json]:
    rows = session.execute(
        select(ConsentRecord, PrivacyNotice.version, ConsoleUser.username)
        .outerjoin(PrivacyNotice, PrivacyNotice.id == ConsentRecord.notice_id)
        .outerjoin(ConsoleUser, ConsoleUser.id == ConsentRecord.operator_id)
        .where(ConsentRecord.person_id == person.id)
        .order_by(ConsentRecord.given_at, ConsentRecord.id)
    )
    return [
        {
            "id": c.id,
            "notice_version": version,
            "notice_sha256": c.notice_sha256,
            "channel": _value(c.channel),
            "given_by": _value(c.given_by),
            "guardian_name": c.guardian_name,
            "guardian_relationship": c.guardian_relationship,
            "given_at": _iso(c.given_at),
            "expires_at": _iso(c.expires_at),
            "withdrawn_at": _iso(c.withdrawn_at),
            "withdrawal_channel": _value(c.withdrawal_channel),
            "stale_at": _iso(c.stale_at),
            "stale_reason": _value(c.stale_reason),
            "operator": username,
        }
        for c, version, username in rows
    ]


def _holdings(session: DbSession, template_ids: Iterable[int]) -> dict[int, list[Json]]:
    """Terminals each template was sent to and has not confirmed deleting, by template id."""
    ids = set(template_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(TemplateHolding.template_id, TemplateHolding.sent_at, Terminal.name, Terminal.ident, Site.name)
        .join(Terminal, Terminal.id == TemplateHolding.terminal_id)
        .join(Site, Site.id == Terminal.site_id)
        .where(TemplateHolding.template_id.in_(ids))
        .order_by(TemplateHolding.template_id, Terminal.name)
    )
    held: dict[int, list[Json]] = {}
    for template_id, sent_at, name, ident, site_name in rows:
        held.setdefault(template_id, []).append(
            {"terminal": name, "terminal_ident": ident, "site": site_name, "sent_at": _iso(sent_at)}
        )
    return held


def _terminal_names(session: DbSession, terminal_ids: set[int]) -> dict[int, tuple[str, str]]:
    if not terminal_ids:
        return {}
    rows = session.execute(select(Terminal.id, Terminal.name, Terminal.ident).where(Terminal.id.in_(terminal_ids)))
    return {tid: (name, ident) for tid, name, ident in rows}


def _erasure(receipt: ErasureReceipt, terminals: dict[int, tuple[str, str]], held: list[Json]) -> Json:
    return {
        "template_id": receipt.template_id,
        "model_id": receipt.model_id,
        "reason": _value(receipt.reason),
        "erased_on_server_at": _iso(receipt.erased_on_server_at),
        "complete": receipt.complete,
        "confirmations": [
            {
                "terminal": terminals.get(c.terminal_id, ("", ""))[0],
                "terminal_ident": terminals.get(c.terminal_id, ("", ""))[1],
                "confirmed_at": _iso(c.confirmed_at),
                "confirmed_by": _value(c.confirmed_by),
            }
            for c in receipt.confirmations
        ],
        "held_on_terminals": held,
    }


@dataclass(frozen=True)
class ErasureProgress:
    """How far the terminals are with one erasure: kind ok (all confirmed), pending (waiting, in time) or bad
    (waiting longer than the site's erasure alarm allows)."""

    kind: str
    confirmed: int
    total: int

    @property
    def waiting(self) -> int:
        """Terminals that have not confirmed yet."""
        return self.total - self.confirmed


def erasure_progress(erasure: Json, alarm_hours: int, now: datetime) -> ErasureProgress:
    """An erasure of the report (see `_erasure`) as terminals confirmed / expected, and whether it is overdue."""
    confirmations = erasure["confirmations"]
    confirmed = sum(1 for c in confirmations if c["confirmed_at"])
    total = len(confirmations) or len(erasure["held_on_terminals"])
    if erasure["complete"] or confirmed >= total:
        return ErasureProgress("ok", confirmed, total)
    erased = datetime.fromisoformat(erasure["erased_on_server_at"])
    erased = erased if erased.tzinfo else erased.replace(tzinfo=UTC)
    late = now - erased > timedelta(hours=alarm_hours)
    return ErasureProgress("bad" if late else "pending", confirmed, total)


def _passes(session: DbSession, person: Person) -> list[Json]:
    # Columns only: the pass code's hash is not the host's data and is never shown.
    rows = session.execute(
        select(
            VisitorPass.id,
            VisitorPass.visitor_name,
            VisitorPass.valid_from,
            VisitorPass.valid_until,
            VisitorPass.uses_allowed,
            VisitorPass.uses_count,
            VisitorPass.status,
        )
        .where(VisitorPass.host_id == person.id)
        .order_by(VisitorPass.valid_from.desc(), VisitorPass.id.desc())
    )
    return [
        {
            "id": r.id,
            "visitor_name": r.visitor_name,
            "valid_from": _iso(r.valid_from),
            "valid_until": _iso(r.valid_until),
            "uses_allowed": r.uses_allowed,
            "uses_count": r.uses_count,
            "status": _value(r.status),
        }
        for r in rows
    ]


def _access_events(session: DbSession, person: Person, limit: int) -> tuple[list[Json], int]:
    mine = AccessEvent.person_pseudonym == person.pseudonym
    total = session.scalar(select(func.count()).select_from(AccessEvent).where(mine)) or 0
    rows = session.execute(
        select(
            AccessEvent.occurred_at,
            Door.name.label("door"),
            Terminal.name.label("terminal"),
            AccessEvent.method,
            AccessEvent.decision,
            AccessEvent.reason,
        )
        .outerjoin(Door, Door.id == AccessEvent.door_id)
        .outerjoin(Terminal, Terminal.id == AccessEvent.terminal_id)
        .where(mine)
        .order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
        .limit(limit)
    )
    events = [
        {
            "occurred_at": _iso(r.occurred_at),
            "door": r.door,
            "terminal": r.terminal,
            "method": _value(r.method),
            "decision": _value(r.decision),
            "reason": r.reason,
        }
        for r in rows
    ]
    return events, total


def _events_note(listed: int, total: int) -> str:
    if listed < total:
        return f"The server holds {total} door events for this person; the newest {listed} are listed here."
    return f"All {total} door events the server holds for this person are listed, newest first."


def _audit(session: DbSession, person: Person) -> list[Json]:
    rows = session.execute(
        select(AuditEntry.at, AuditEntry.actor_label, AuditEntry.action, AuditEntry.details)
        .where(AuditEntry.target_type == "person", AuditEntry.target_id == str(person.id))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    return [
        {"at": _iso(r.at), "actor_label": r.actor_label, "action": r.action, "details": dict(r.details or {})}
        for r in rows
    ]
