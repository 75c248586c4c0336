"""Visitor passes: a resident invites a visitor for a window, some doors and a number of uses.

The visitor gets a 6-digit code (only its keyed hash is kept) and a QR carrying a server-signed token,
so a terminal can admit them offline. Every granted use a terminal reports is counted here; a pass
that has used its uses is marked used up and terminals learn it through the journal, which together
with each terminal's own replay cache keeps a single-use pass single-use across terminals.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.orm import joinedload, selectinload

from gatehouse_core.credential_hash import PASS_CODE_DIGITS, hash_pass_code, site_hashing_key
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.pass_token import EARLIEST_TIME, LATEST_TIME, MAX_DOORS, MAX_USES, PassClaims, sign_pass
from server.models import (
    AccessEvent,
    Decision,
    Door,
    EntryMethod,
    JournalKind,
    PassStatus,
    Person,
    PersonStatus,
    Site,
    VisitorPass,
    utcnow,
)
from server.services import audit, journal
from server.services.access.access import allowed_doors
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.session import DbSession

MAX_PASS_DAYS = 31
_CODE_ATTEMPTS = 20


@dataclass(frozen=True)
class IssuedPass:
    """A new pass with what the visitor needs; the code is shown once and kept only as a hash."""

    visitor_pass: VisitorPass
    code: str
    token: str


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _token_time(moment: datetime) -> datetime:
    """`moment` in UTC to the second, refused (bad_window) outside what a pass token can state."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31 at a western offset is past year 9999 in UTC
        utc = None
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise RuleViolation(
            f"A pass must end by {LATEST_TIME:%Y-%m-%d %H:%M:%S} UTC, the latest time its QR code can carry; "
            "choose an earlier window.",
            code="bad_window",
        )
    return _whole_seconds(utc)


def issue_pass(
    session: DbSession,
    actor: Actor,
    keys: ServerKeys,
    host: Person,
    visitor_name: str,
    valid_from: datetime,
    valid_until: datetime,
    doors: Iterable[Door],
    uses_allowed: int = 1,
    *,
    now: datetime | None = None,
) -> IssuedPass:
    """Issue a pass for doors the host may use; returns the code and the signed QR token."""
    now = now or utcnow()
    name = " ".join(visitor_name.split())
    if not 1 <= len(name) <= 200:
        raise RuleViolation("Give the visitor's name (up to 200 characters).", code="bad_visitor_name")
    if host.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Only residents active at the site can invite visitors.", code="inactive")
    doors = sorted({d.id: d for d in doors}.values(), key=lambda d: d.id)
    if not 1 <= len(doors) <= MAX_DOORS:
        raise RuleViolation(f"Choose 1 to {MAX_DOORS} doors for the visitor.", code="bad_doors")
    mine = allowed_doors(host)
    if any(d.site_id != host.site_id or d.id not in mine for d in doors):
        raise _foreign_door()
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise RuleViolation("Give the pass times with a time zone.", code="naive_time")
    start, end = _token_time(valid_from), _token_time(valid_until)
    if not start < end:
        raise RuleViolation("A pass must start before it ends.", code="bad_window")
    if end <= now:
        raise RuleViolation("This pass would already have ended; choose a later end.", code="bad_window")
    if end - start > timedelta(days=MAX_PASS_DAYS):
        raise RuleViolation(f"A visitor pass lasts at most {MAX_PASS_DAYS} days.", code="bad_window")
    if not 1 <= uses_allowed <= MAX_USES:
        raise RuleViolation(f"A pass allows 1 to {MAX_USES} entries.", code="bad_uses")

    site_key = site_hashing_key(keys.credential_secret, host.site.code)
    code, digest = _fresh_code(session, host.site_id, site_key)
    visitor_pass = VisitorPass(
        site_id=host.site_id,
        host=host,
        visitor_name=name,
        valid_from=start,
        valid_until=end,
        uses_allowed=uses_allowed,
        uses_count=0,
        code_hash=digest,
        doors=doors,
    )
    session.add(visitor_pass)
    session.flush()
    journal.append(session, host.site_id, JournalKind.PASS_ISSUE, {"pass": visitor_pass.id})
    audit.record(
        session,
        actor,
        "pass.issue",
        "visitor_pass",
        visitor_pass.id,
        site_id=host.site_id,
        details={"host": host.id, "doors": [d.id for d in doors], "uses": uses_allowed},
    )
    return IssuedPass(visitor_pass, code, token_for(keys, visitor_pass))


def _foreign_door() -> RuleViolation:
    return RuleViolation("A visitor can only be invited through doors the host may use.", code="foreign_door")


def host_doors(session: DbSession, host: Person, door_ids: Iterable[int]) -> list[Door]:
    """The doors `door_ids` at the host's site; an id of another site or of no door is refused like a foreign door."""
    wanted = set(door_ids)
    if not wanted:
        return []
    found = list(session.scalars(select(Door).where(Door.site_id == host.site_id, Door.id.in_(wanted))))
    if len(found) != len(wanted):
        raise _foreign_door()
    return found


def _fresh_code(session: DbSession, site_id: int, site_key: bytes) -> tuple[str, str]:
    """A random code no live pass of the site has, with its hash."""
    for _ in range(_CODE_ATTEMPTS):
        code = f"{secrets.randbelow(10**PASS_CODE_DIGITS):0{PASS_CODE_DIGITS}d}"
        digest = hash_pass_code(site_key, code)
        taken = session.scalar(
            select(VisitorPass.id).where(
                VisitorPass.site_id == site_id,
                VisitorPass.code_hash == digest,
                VisitorPass.status != PassStatus.EXPIRED,
            )
        )
        if taken is None:
            return code, digest
    raise Conflict("Too many live visitor passes to find a free code; revoke unused passes.", code="codes_exhausted")


def token_for(keys: ServerKeys, visitor_pass: VisitorPass) -> str:
    """The signed QR token of a pass (it holds nothing secret, so it can be shown again)."""
    claims = PassClaims(
        pass_id=visitor_pass.id,
        doors=tuple(sorted(d.id for d in visitor_pass.doors)),
        valid_from=visitor_pass.valid_from,
        valid_until=visitor_pass.valid_until,
        uses_allowed=visitor_pass.uses_allowed,
    )
    return sign_pass(keys.signing_key, visitor_pass.host.site.code, claims)


def revoke_pass(session: DbSession, actor: Actor, visitor_pass: VisitorPass) -> None:
    """Revoke a pass; terminals refuse its code and QR as soon as they hear."""
    if visitor_pass.status in (PassStatus.REVOKED, PassStatus.EXPIRED):
        return
    visitor_pass.status = PassStatus.REVOKED
    journal.append(session, visitor_pass.site_id, JournalKind.PASS_REVOKE, {"pass": visitor_pass.id})
    audit.record(session, actor, "pass.revoke", "visitor_pass", visitor_pass.id, site_id=visitor_pass.site_id)


def count_uses(session: DbSession, granted: Iterable[int]) -> None:
    """Count newly stored granted entries against their passes (one pass id per entry)."""
    uses = Counter(granted)
    for pass_id, n in sorted(uses.items()):
        session.execute(
            update(VisitorPass).where(VisitorPass.id == pass_id).values(uses_count=VisitorPass.uses_count + n)
        )
        visitor_pass = session.get(VisitorPass, pass_id)
        if visitor_pass is None:
            continue
        session.refresh(visitor_pass, ["uses_count", "status"])
        if visitor_pass.status is PassStatus.ACTIVE and visitor_pass.uses_count >= visitor_pass.uses_allowed:
            visitor_pass.status = PassStatus.USED_UP
        journal.append(session, visitor_pass.site_id, JournalKind.PASS_CONSUME, {"pass": pass_id})


def expire_passes(session: DbSession, now: datetime | None = None, site_id: int | None = None) -> int:
    """Mark passes that have ended (at every site, or one) as expired so terminals drop them; returns how many."""
    now = now or utcnow()
    stmt = select(VisitorPass).where(VisitorPass.status != PassStatus.EXPIRED, VisitorPass.valid_until <= now)
    if site_id is not None:
        stmt = stmt.where(VisitorPass.site_id == site_id)
    ended = session.scalars(stmt).all()
    for visitor_pass in ended:
        visitor_pass.status = PassStatus.EXPIRED
        journal.append(session, visitor_pass.site_id, JournalKind.PASS_REVOKE, {"pass": visitor_pass.id, "ended": True})
    return len(ended)


PAGE_SIZE = 50


@dataclass(frozen=True)
class PassFilter:
    """What the console's pass list is narrowed to; days are site-local and inclusive."""

    site_id: int | None = None
    status: PassStatus | None = None
    host: str = ""
    first_day: date | None = None
    last_day: date | None = None


@dataclass(frozen=True)
class PassPage:
    """One page of passes, newest first, and the id to continue after (None on the last page)."""

    passes: list[VisitorPass]
    next_before: int | None


def check_filter_day(day: date) -> None:
    """Refuse (bad_day) a day to filter by outside the times any pass can have (its token's range)."""
    if not EARLIEST_TIME.date() <= day <= LATEST_TIME.date():
        raise RuleViolation(
            f"Visitor passes fall between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d}; "
            "choose a day in between.",
            code="bad_day",
        )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _days_overlap(session: DbSession, flt: PassFilter) -> ColumnElement[bool] | None:
    """Passes whose window touches the chosen days, each site judged by its own calendar."""
    if flt.first_day is None and flt.last_day is None:
        return None
    stmt = select(Site.id, Site.timezone)
    if flt.site_id is not None:
        stmt = stmt.where(Site.id == flt.site_id)
    clauses: list[ColumnElement[bool]] = []
    for site_id, timezone in session.execute(stmt):
        tz = ZoneInfo(timezone)
        parts = [VisitorPass.site_id == site_id]
        # No pass reaches past the latest time a token can state, so later days bound nothing (and cannot overflow).
        if flt.first_day is not None:
            first = min(max(flt.first_day, EARLIEST_TIME.date()), LATEST_TIME.date())
            parts.append(VisitorPass.valid_until > datetime.combine(first, time(), tz).astimezone(UTC))
        if flt.last_day is not None and flt.last_day < LATEST_TIME.date():
            last = max(flt.last_day, EARLIEST_TIME.date())
            end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
            parts.append(VisitorPass.valid_from < end)
        clauses.append(and_(*parts))
    return or_(*clauses) if clauses else false()


def list_passes(session: DbSession, flt: PassFilter, *, before: int | None = None, limit: int = PAGE_SIZE) -> PassPage:
    """A page of visitor passes matching `flt`, newest first (keyset on id), with hosts and doors loaded."""
    stmt = select(VisitorPass).options(joinedload(VisitorPass.host), selectinload(VisitorPass.doors))
    if flt.site_id is not None:
        stmt = stmt.where(VisitorPass.site_id == flt.site_id)
    if flt.status is not None:
        stmt = stmt.where(VisitorPass.status == flt.status)
    host = " ".join(flt.host.split())
    if host:
        stmt = stmt.where(
            VisitorPass.host_id.in_(select(Person.id).where(Person.full_name.ilike(_like(host), escape="\\")))
        )
    days = _days_overlap(session, flt)
    if days is not None:
        stmt = stmt.where(days)
    if before is not None:
        stmt = stmt.where(VisitorPass.id < before)
    rows = list(session.scalars(stmt.order_by(VisitorPass.id.desc()).limit(limit + 1)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    return PassPage(rows, rows[-1].id if more else None)


def status_at(visitor_pass: VisitorPass, now: datetime | None = None) -> PassStatus:
    """The status terminals would judge a pass by now: an active pass past its end is expired already."""
    now = now or utcnow()
    if visitor_pass.status is PassStatus.ACTIVE and visitor_pass.valid_until <= now:
        return PassStatus.EXPIRED
    return visitor_pass.status


def get_own_pass(session: DbSession, host: Person, pass_id: int) -> VisitorPass:
    """The host's own pass `pass_id`; another resident's or an unknown pass is NotFound alike."""
    visitor_pass = session.scalar(
        select(VisitorPass)
        .where(VisitorPass.id == pass_id, VisitorPass.host_id == host.id)
        .options(selectinload(VisitorPass.doors))
    )
    if visitor_pass is None:
        raise NotFound("You have no visitor pass with this id.")
    return visitor_pass


def list_own_passes(
    session: DbSession,
    host: Person,
    status: PassStatus | None = None,
    *,
    before: int | None = None,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
) -> PassPage:
    """A page of the host's own passes, newest first (keyset on id); `status` as `status_at` judges it."""
    now = now or utcnow()
    stmt = select(VisitorPass).where(VisitorPass.host_id == host.id).options(selectinload(VisitorPass.doors))
    if status is PassStatus.ACTIVE:
        stmt = stmt.where(VisitorPass.status == PassStatus.ACTIVE, VisitorPass.valid_until > now)
    elif status is PassStatus.EXPIRED:
        stmt = stmt.where(
            or_(
                VisitorPass.status == PassStatus.EXPIRED,
                and_(VisitorPass.status == PassStatus.ACTIVE, VisitorPass.valid_until <= now),
            )
        )
    elif status is not None:
        stmt = stmt.where(VisitorPass.status == status)
    if before is not None:
        stmt = stmt.where(VisitorPass.id < before)
    rows = list(session.scalars(stmt.order_by(VisitorPass.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return PassPage(rows, rows[-1].id if more else None)


@dataclass(frozen=True)
class PassEvent:
    """One decision at a door about a pass: when, which door (None if since removed), how, and the outcome."""

    id: int
    occurred_at: datetime
    door_id: int | None
    door_name: str | None
    method: EntryMethod
    decision: Decision
    reason: str


@dataclass(frozen=True)
class PassEventPage:
    """One page of a pass's events, newest first, and the event id to continue after (None on the last page)."""

    events: list[PassEvent]
    next_before: int | None


def pass_events(
    session: DbSession, visitor_pass: VisitorPass, *, before: int | None = None, limit: int = PAGE_SIZE
) -> PassEventPage:
    """Grants and refusals of one pass, newest first by time, continuing after the event `before` of this pass."""
    conditions: list[ColumnElement[bool]] = [AccessEvent.pass_id == visitor_pass.id]
    if before is not None:
        at = session.scalar(
            select(AccessEvent.occurred_at).where(AccessEvent.id == before, AccessEvent.pass_id == visitor_pass.id)
        )
        if at is None:
            return PassEventPage([], None)
        # The first half bounds the (pass_id, occurred_at) index range; the second orders events of one instant.
        conditions.append(AccessEvent.occurred_at <= at)
        conditions.append(or_(AccessEvent.occurred_at < at, AccessEvent.id < before))
    stmt = (
        select(AccessEvent, Door.name)
        .outerjoin(Door, Door.id == AccessEvent.door_id)
        .where(*conditions)
        .order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
        .limit(limit + 1)
    )
    rows = list(session.execute(stmt).all())
    more = len(rows) > limit
    events = [
        PassEvent(e.id, e.occurred_at, e.door_id, name, e.method, e.decision, e.reason) for e, name in rows[:limit]
    ]
    return PassEventPage(events, events[-1].id if more and events else None)
