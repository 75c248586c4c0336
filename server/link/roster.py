"""What each terminal should hold, computed from the database (minimisation happens here).

A terminal gets its own doors, the access groups that cover them (cut down to them), the active people
allowed through them with their active credentials, face templates only of people with active consent
and only if one of its doors where they are allowed takes face, and the visitor passes for its doors.
Secrets are re-sealed with the terminal's own key on the way out.

Loading uses plain column queries rather than ORM objects: a snapshot of 50,000 people must take
seconds, not minutes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, and_, or_, select

from gatehouse_core.keyring import ServerKeys, terminal_seal_key
from gatehouse_core.sealed import seal, unseal
from gatehouse_core.wire.messages import Decision
from gatehouse_core.wire.records import (
    MAX_PASS_USES,
    CredentialRecord,
    DoorMode,
    DoorRecord,
    GroupRecord,
    PassRecord,
    PersonRecord,
    Record,
    SiteRecord,
    TemplateRecord,
    fingerprint,
    roster_hash,
    seed_context,
    template_context,
)
from server.models import (
    AccessEvent,
    AccessGroup,
    ConsentRecord,
    Credential,
    CredentialStatus,
    Door,
    DoorOverride,
    DoorUnlockSchedule,
    FaceTemplate,
    Holiday,
    PassStatus,
    Person,
    PersonStatus,
    Site,
    Terminal,
    VisitorPass,
    WeeklyWindow,
    access_group_doors,
    access_group_members,
    terminal_doors,
    utcnow,
)
from server.models.access import pass_doors
from server.services.face.templates import template_context as server_template_context
from server.services.people.credentials import app_code_context
from server.services.session import DbSession


@dataclass(frozen=True)
class TerminalScope:
    """A terminal and the doors it serves."""

    terminal_id: int
    ident: str
    site_code: str
    doors: frozenset[int]
    face_doors: frozenset[int]


@dataclass
class SiteData:
    """Site-wide parts of every roster of a site, loaded once per publishing round."""

    site: SiteRecord
    doors: dict[int, DoorRecord]
    # group id -> (doors, windows, open on holidays)
    groups: dict[int, tuple[frozenset[int], tuple[tuple[int, int, int], ...], bool]]


@dataclass
class PersonData:
    """One active person with what any terminal could need, secrets still sealed with server keys."""

    person_id: int
    pseudonym: str
    groups: frozenset[int]
    credentials: list[tuple[int, str, str | None, bytes | None]] = field(default_factory=list)
    templates: list[tuple[int, str, bytes]] = field(default_factory=list)
    kind: str = "resident"  # PersonKind: past the offline bound, terminals let staff and residents in differently


class Sealer(Protocol):
    """Turns a server-sealed secret into one sealed for a terminal."""

    def template(self, person: PersonData, template_id: int, model: str, sealed: bytes) -> bytes: ...

    def seed(self, person: PersonData, credential_id: int, sealed: bytes) -> bytes: ...


class TerminalSealer:
    """Re-seals secrets from the server's template key to one terminal's seal key."""

    def __init__(self, keys: ServerKeys, terminal_ident: str) -> None:
        self._server_key = keys.template_key
        self._key = terminal_seal_key(keys.template_key, terminal_ident)

    def template(self, person: PersonData, template_id: int, model: str, sealed: bytes) -> bytes:
        """A template sealed for the terminal."""
        plain = unseal(self._server_key, sealed, server_template_context(person.person_id, model))
        return seal(self._key, plain, template_context(person.pseudonym, template_id))

    def seed(self, person: PersonData, credential_id: int, sealed: bytes) -> bytes:
        """An app-code seed sealed for the terminal."""
        plain = unseal(self._server_key, sealed, app_code_context(person.person_id))
        return seal(self._key, plain, seed_context(person.pseudonym, credential_id))


class HashOnlySealer:
    """Stands in for sealing when only the roster hash is wanted (sealed parts do not enter the hash)."""

    _PLACEHOLDER = bytes(29)

    def template(self, person: PersonData, template_id: int, model: str, sealed: bytes) -> bytes:
        """A placeholder."""
        return self._PLACEHOLDER

    def seed(self, person: PersonData, credential_id: int, sealed: bytes) -> bytes:
        """A placeholder."""
        return self._PLACEHOLDER


def scopes_of_site(session: DbSession, site_id: int, terminal_id: int | None = None) -> list[TerminalScope]:
    """Every terminal of a site (or just one of them) with its doors."""
    stmt = (
        select(Terminal.id, Terminal.ident, Site.code, terminal_doors.c.door_id, Door.accepts_face)
        .join(Site, Site.id == Terminal.site_id)
        .join(terminal_doors, terminal_doors.c.terminal_id == Terminal.id)
        .join(Door, Door.id == terminal_doors.c.door_id)
        .where(Terminal.site_id == site_id)
    )
    if terminal_id is not None:
        stmt = stmt.where(Terminal.id == terminal_id)
    rows = session.execute(stmt).all()
    doors: dict[tuple[int, str, str], set[int]] = defaultdict(set)
    face: dict[int, set[int]] = defaultdict(set)
    for terminal_id, ident, code, door_id, accepts_face in rows:
        doors[(terminal_id, ident, code)].add(door_id)
        if accepts_face:
            face[terminal_id].add(door_id)
    return [
        TerminalScope(tid, ident, code, frozenset(ds), frozenset(face[tid]))
        for (tid, ident, code), ds in sorted(doors.items())
    ]


def scope_of(session: DbSession, terminal: Terminal) -> TerminalScope:
    """The scope of one terminal."""
    for scope in scopes_of_site(session, terminal.site_id, terminal.id):
        return scope
    return TerminalScope(terminal.id, terminal.ident, terminal.site.code, frozenset(), frozenset())


def load_site(session: DbSession, site: Site) -> SiteData:
    """Doors, groups, windows and holidays of a site."""
    holidays = tuple(sorted(session.scalars(select(Holiday.day).where(Holiday.site_id == site.id))))
    doors = {
        row.id: DoorRecord(
            id=row.id,
            face=row.accepts_face,
            card=row.accepts_card,
            id_document=row.accepts_id_document,
            app_code=row.accepts_app_code,
        )
        for row in session.execute(
            select(
                Door.id, Door.accepts_face, Door.accepts_card, Door.accepts_id_document, Door.accepts_app_code
            ).where(Door.site_id == site.id)
        )
    }
    _add_modes(session, site.id, doors)
    group_doors: dict[int, set[int]] = defaultdict(set)
    windows: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    open_on_holidays: dict[int, bool] = {}
    for gid, flag in session.execute(
        select(AccessGroup.id, AccessGroup.open_on_holidays).where(AccessGroup.site_id == site.id)
    ):
        open_on_holidays[gid] = flag
    for gid, door_id in session.execute(
        select(access_group_doors.c.group_id, access_group_doors.c.door_id)
        .join(AccessGroup, AccessGroup.id == access_group_doors.c.group_id)
        .where(AccessGroup.site_id == site.id)
    ):
        group_doors[gid].add(door_id)
    for gid, weekday, start, end in session.execute(
        select(WeeklyWindow.group_id, WeeklyWindow.weekday, WeeklyWindow.start_minute, WeeklyWindow.end_minute)
        .join(AccessGroup, AccessGroup.id == WeeklyWindow.group_id)
        .where(AccessGroup.site_id == site.id)
    ):
        windows[gid].append((weekday, start, end))
    return SiteData(
        site=SiteRecord(
            timezone=site.timezone,
            face_enabled=site.face_enabled,
            holidays=holidays,
            max_offline_hours=site.max_offline_hours,
            offline_policy=site.offline_policy,
        ),
        doors=doors,
        groups={
            gid: (frozenset(group_doors[gid]), tuple(sorted(windows[gid])), flag)
            for gid, flag in open_on_holidays.items()
        },
    )


def _add_modes(session: DbSession, site_id: int, doors: dict[int, DoorRecord]) -> None:
    """Each door's live override (the latest started wins) and unlock schedule, onto its record."""
    modes: dict[int, DoorMode] = {}
    for door_id, override in session.execute(
        select(DoorOverride.door_id, DoorOverride.mode)
        .where(DoorOverride.site_id == site_id, DoorOverride.lifted_at.is_(None))
        .order_by(DoorOverride.started_at, DoorOverride.id)
    ):
        modes[door_id] = DoorMode(override.value)
    for door_id, door_mode in modes.items():
        if door_id in doors:
            doors[door_id] = doors[door_id].model_copy(update={"mode": door_mode})
    for row in session.scalars(
        select(DoorUnlockSchedule).join(Door, Door.id == DoorUnlockSchedule.door_id).where(Door.site_id == site_id)
    ):
        windows = tuple(sorted(tuple(w) for w in json.loads(row.windows)))
        if row.door_id in doors and windows:
            doors[row.door_id] = DoorRecord.model_validate(
                {
                    **doors[row.door_id].model_dump(),
                    "unlock_windows": windows,
                    "first_person_in": row.first_person_in,
                    "unlock_on_holidays": row.open_on_holidays,
                }
            )


def load_people(
    session: DbSession, site_id: int, pseudonyms: Iterable[str] | None = None, at: datetime | None = None
) -> dict[str, PersonData]:
    """Active people of a site (all, or those named) with groups, active credentials and consented templates."""
    if pseudonyms is None:
        return {p.pseudonym: p for block in iter_people(session, site_id, at=at) for p in block}
    wanted = sorted(set(pseudonyms))
    if not wanted:
        return {}
    return {p.pseudonym: p for p in _load_people(session, site_id, Person.pseudonym.in_(wanted), at)}


def iter_people(
    session: DbSession, site_id: int, batch: int = 2000, at: datetime | None = None
) -> Iterator[list[PersonData]]:
    """All active people of a site in blocks, so a snapshot can be sent while the rest is still loading."""
    for block in _chunks(active_person_ids(session, site_id), batch):
        yield load_people_between(session, site_id, block[0], block[-1], at)


def active_person_ids(session: DbSession, site_id: int) -> list[int]:
    """Ids of the site's active people, in order (a snapshot walks them in blocks)."""
    return list(
        session.scalars(
            select(Person.id).where(Person.site_id == site_id, Person.status == PersonStatus.ACTIVE).order_by(Person.id)
        )
    )


def load_people_between(
    session: DbSession, site_id: int, first: int, last: int, at: datetime | None = None
) -> list[PersonData]:
    """The site's people with ids from `first` to `last` who are active now."""
    return _load_people(session, site_id, Person.id.between(first, last), at)


def _load_people(session: DbSession, site_id: int, which: ColumnElement[bool], at: datetime | None) -> list[PersonData]:
    at = at or utcnow()
    people: dict[int, PersonData] = {
        pid: PersonData(pid, pseudonym, frozenset(), kind=kind.value)
        for pid, pseudonym, kind in session.execute(
            select(Person.id, Person.pseudonym, Person.kind)
            .where(Person.site_id == site_id, Person.status == PersonStatus.ACTIVE, which)
            .order_by(Person.id)
        )
    }
    if not people:
        return []
    # Look the rest up by person id (indexed), never by joining back to people: a join can make the
    # database walk every template row, and template rows are large.
    ids = sorted(people)
    groups: dict[int, set[int]] = defaultdict(set)
    for pid, gid in session.execute(
        select(access_group_members.c.person_id, access_group_members.c.group_id).where(
            access_group_members.c.person_id.in_(ids)
        )
    ):
        groups[pid].add(gid)
    for pid, data in people.items():
        data.groups = frozenset(groups[pid])
    for pid, cid, kind, digest, sealed in session.execute(
        select(Credential.person_id, Credential.id, Credential.kind, Credential.lookup_hash, Credential.sealed_secret)
        .where(Credential.person_id.in_(ids), Credential.status == CredentialStatus.ACTIVE)
        .order_by(Credential.id)
    ):
        people[pid].credentials.append((cid, kind.value, digest, sealed))
    # Stale consents (a new notice or face model) suspend face matching until the person renews.
    consent_active = and_(
        ConsentRecord.withdrawn_at.is_(None),
        ConsentRecord.stale_at.is_(None),
        or_(ConsentRecord.expires_at.is_(None), ConsentRecord.expires_at > at),
    )
    for pid, tid, model, sealed in session.execute(
        select(FaceTemplate.person_id, FaceTemplate.id, FaceTemplate.model_id, FaceTemplate.sealed_vector)
        .join(ConsentRecord, ConsentRecord.id == FaceTemplate.consent_id)
        .where(FaceTemplate.person_id.in_(ids), consent_active)
        .order_by(FaceTemplate.id)
    ):
        people[pid].templates.append((tid, model, sealed))
    return list(people.values())


@dataclass(frozen=True)
class PassData:
    """A visitor pass as terminals see it: the pass, its doors and the granted events counted against it."""

    visitor_pass: VisitorPass
    doors: frozenset[int]
    used: tuple[str, ...]


def load_passes(session: DbSession, site_id: int, ids: Iterable[int] | None = None) -> dict[int, PassData]:
    """Visitor passes terminals hold: every pass the server has not yet expired, revoked and used-up ones too.

    Revoked and used-up passes stay until the worker expires them (a journal entry), so a terminal can
    refuse their signed QR tokens; expiry by the clock alone would make terminals' rosters drift.
    """
    stmt = select(VisitorPass).where(VisitorPass.site_id == site_id, VisitorPass.status != PassStatus.EXPIRED)
    if ids is not None:
        stmt = stmt.where(VisitorPass.id.in_(sorted(set(ids))))
    passes = {p.id: p for p in session.scalars(stmt)}
    doors: dict[int, set[int]] = defaultdict(set)
    used: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(sorted(passes), 500):
        for pid, door_id in session.execute(
            select(pass_doors.c.pass_id, pass_doors.c.door_id).where(pass_doors.c.pass_id.in_(chunk))
        ):
            doors[pid].add(door_id)
        for pid, uid in session.execute(
            select(AccessEvent.pass_id, AccessEvent.event_uid)
            .where(AccessEvent.pass_id.in_(chunk), AccessEvent.decision == Decision.GRANT)
            .order_by(AccessEvent.event_uid)
        ):
            if pid is not None:
                used[pid].append(uid)
    return {pid: PassData(p, frozenset(doors[pid]), tuple(used[pid][:MAX_PASS_USES])) for pid, p in passes.items()}


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def door_records(site: SiteData, scope: TerminalScope) -> list[DoorRecord]:
    """The terminal's doors."""
    return [site.doors[d] for d in sorted(scope.doors) if d in site.doors]


def group_record(site: SiteData, scope: TerminalScope, group_id: int) -> GroupRecord | None:
    """A group cut down to the terminal's doors, or None if it covers none of them."""
    if group_id not in site.groups:
        return None
    doors, windows, open_on_holidays = site.groups[group_id]
    mine = doors & scope.doors
    if not mine:
        return None
    return GroupRecord(id=group_id, doors=tuple(sorted(mine)), windows=windows, open_on_holidays=open_on_holidays)


def person_record(site: SiteData, scope: TerminalScope, person: PersonData, sealer: Sealer) -> PersonRecord | None:
    """What the terminal holds of a person, or None if none of its doors lets them through."""
    visible = []
    allowed: set[int] = set()
    for gid in sorted(person.groups):
        doors = site.groups.get(gid, (frozenset(),))[0]
        if doors & scope.doors:
            visible.append(gid)
            allowed |= doors & scope.doors
    if not visible:
        return None
    credentials = tuple(
        CredentialRecord(id=cid, kind=kind, hash=digest)  # type: ignore[arg-type]
        if kind != "app_code"
        else CredentialRecord(id=cid, kind="app_code", sealed=sealer.seed(person, cid, sealed or b""))
        for cid, kind, digest, sealed in person.credentials
    )
    templates: tuple[TemplateRecord, ...] = ()
    if site.site.face_enabled and allowed & scope.face_doors:
        templates = tuple(
            TemplateRecord(id=tid, model=model, sealed=sealer.template(person, tid, model, sealed))
            for tid, model, sealed in person.templates
        )
    return PersonRecord(
        pseudonym=person.pseudonym,
        groups=tuple(visible),
        credentials=credentials,
        templates=templates,
        person_kind=person.kind,  # type: ignore[arg-type]
    )


def pass_record(scope: TerminalScope, data: PassData) -> PassRecord | None:
    """A pass for the terminal's doors, or None."""
    mine = data.doors & scope.doors
    if not mine:
        return None
    visitor_pass = data.visitor_pass
    return PassRecord(
        id=visitor_pass.id,
        doors=tuple(sorted(mine)),
        valid_from=visitor_pass.valid_from,
        valid_until=visitor_pass.valid_until,
        uses_allowed=visitor_pass.uses_allowed,
        uses_count=visitor_pass.uses_count,
        used=data.used,
        revoked=visitor_pass.status is PassStatus.REVOKED,
        code_hash=visitor_pass.code_hash,
    )


def full_roster(session: DbSession, site: Site, scope: TerminalScope, sealer: Sealer) -> list[Record]:
    """Everything the terminal should hold right now."""
    return [r for block in iter_roster(session, site, scope, sealer) for r in block]


def iter_roster(
    session: DbSession, site: Site, scope: TerminalScope, sealer: Sealer, batch: int = 2000
) -> Iterator[list[Record]]:
    """The terminal's full roster in blocks: site, doors, groups and passes first, then people."""
    data = load_site(session, site)
    yield head_records(session, site.id, data, scope)
    for block in iter_people(session, site.id, batch):
        yield [r for person in block if (r := person_record(data, scope, person, sealer)) is not None]


def head_records(session: DbSession, site_id: int, data: SiteData, scope: TerminalScope) -> list[Record]:
    """The first block of a terminal's roster: site, its doors, the groups that cover them, passes."""
    records: list[Record] = [data.site, *door_records(data, scope)]
    records += [g for gid in sorted(data.groups) if (g := group_record(data, scope, gid)) is not None]
    for held in load_passes(session, site_id).values():
        pass_ = pass_record(scope, held)
        if pass_ is not None:
            records.append(pass_)
    return records


def expected_hash(session: DbSession, site: Site, scope: TerminalScope) -> str:
    """The roster hash the terminal reports when it holds exactly what it should."""
    return roster_hash((r.kind, r.key, fingerprint(r)) for r in full_roster(session, site, scope, HashOnlySealer()))
