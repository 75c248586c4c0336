"""What a resident may read about themselves in the app: credentials, doors, door events, erasure receipts.

Every query is scoped to one person. Credentials are read column by column, so a lookup hash or a sealed
app-code seed never leaves the database for these views.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.wire.messages import EntryMethod
from server.models import (
    AccessEvent,
    Credential,
    CredentialStatus,
    Door,
    ErasureConfirmation,
    ErasureReason,
    Person,
    Site,
    Terminal,
)
from server.services.access.access import allowed_doors
from server.services.privacy.erasure import receipts_of_person
from server.services.session import DbSession


@dataclass(frozen=True)
class CredentialRow:
    """One of the person's credentials, without its value."""

    id: int
    kind: CredentialKind
    status: CredentialStatus
    created_at: datetime
    revoked_at: datetime | None


def credentials_of(session: DbSession, person: Person) -> list[CredentialRow]:
    """The person's cards, ID documents and app codes (active and revoked), newest first."""
    rows = session.execute(
        select(Credential.id, Credential.kind, Credential.status, Credential.created_at, Credential.revoked_at)
        .where(Credential.person_id == person.id)
        .order_by(Credential.created_at.desc(), Credential.id.desc())
    )
    return [CredentialRow(r.id, r.kind, r.status, r.created_at, r.revoked_at) for r in rows]


def door_methods(door: Door, site: Site) -> list[EntryMethod]:
    """How one may identify at a door; face only while the site has face entry switched on."""
    methods = [
        method
        for method, accepted in (
            (EntryMethod.CARD, door.accepts_card),
            (EntryMethod.ID_DOCUMENT, door.accepts_id_document),
            (EntryMethod.APP_CODE, door.accepts_app_code),
            (EntryMethod.FACE, door.accepts_face and site.face_enabled),
        )
        if accepted
    ]
    return methods


def usable_doors(session: DbSession, person: Person) -> list[Door]:
    """The doors the person's access groups cover (any time of day), by name; none unless the person is active."""
    ids = allowed_doors(person)
    if not ids:
        return []
    return list(session.scalars(select(Door).where(Door.id.in_(ids)).order_by(Door.name, Door.id)))


@dataclass(frozen=True)
class OwnEventPage:
    """A page of the person's own door events, newest first, with door names and where the next page starts."""

    events: list[AccessEvent]
    door_names: dict[int, str]
    next_before: int | None


def events_of(session: DbSession, person: Person, before: int | None, limit: int) -> OwnEventPage:
    """The person's door events with ids below `before` (all, if None), newest first, at most `limit`."""
    stmt = select(AccessEvent).where(AccessEvent.person_pseudonym == person.pseudonym)
    if before is not None:
        stmt = stmt.where(AccessEvent.id < before)
    rows = list(session.scalars(stmt.order_by(AccessEvent.id.desc()).limit(limit + 1)))
    events = rows[:limit]
    door_ids = {e.door_id for e in events if e.door_id is not None}
    names: dict[int, str] = {}
    if door_ids:
        doors = session.execute(select(Door.id, Door.name).where(Door.id.in_(door_ids)))
        names = {door_id: name for door_id, name in doors}
    next_before = events[-1].id if len(rows) > limit else None
    return OwnEventPage(events, names, next_before)


@dataclass(frozen=True)
class TerminalLine:
    """One terminal's part of an erasure: its name, and when it confirmed (None while pending)."""

    name: str
    confirmed_at: datetime | None


@dataclass(frozen=True)
class ReceiptRow:
    """One erased face template: when the server erased it and which terminals have confirmed."""

    id: int
    reason: ErasureReason
    model_id: str
    erased_on_server_at: datetime
    terminals: list[TerminalLine]

    @property
    def complete(self) -> bool:
        """Every terminal that held the template has confirmed its deletion."""
        return all(line.confirmed_at is not None for line in self.terminals)


def receipts_of(session: DbSession, person: Person) -> list[ReceiptRow]:
    """The person's erasure receipts, newest first, with terminal names (two queries however many receipts)."""
    receipts = receipts_of_person(session, person.id)
    lines: dict[int, list[TerminalLine]] = defaultdict(list)
    if receipts:
        rows = session.execute(
            select(ErasureConfirmation.receipt_id, Terminal.name, ErasureConfirmation.confirmed_at)
            .join(Terminal, Terminal.id == ErasureConfirmation.terminal_id)
            .where(ErasureConfirmation.receipt_id.in_([r.id for r in receipts]))
            .order_by(ErasureConfirmation.receipt_id, Terminal.name, Terminal.id)
        )
        for receipt_id, name, confirmed_at in rows:
            lines[receipt_id].append(TerminalLine(name, confirmed_at))
    return [ReceiptRow(r.id, r.reason, r.model_id, r.erased_on_server_at, lines.get(r.id, [])) for r in receipts]
