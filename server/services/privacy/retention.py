"""Retention: each site's access events, ended visitor passes and unused face templates go when their time is up.

The periods are settings of each site. Events and passes are deleted in bulk; face templates are erased one
by one through `face_templates.delete_template`, so terminals are told and an erasure receipt tracks each.
Every purge that removed something is audited with its count and cutoff, never with what was removed.

People of kind visitor are not purged here: nothing links them to the passes they came on, so there is no
end of visit to count from (a visitor pass holds the visitor's name itself, and goes with the pass).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select
from sqlalchemy.orm import selectinload

from server.models import (
    AccessEvent,
    AppSession,
    ErasureReason,
    FaceTemplate,
    LoginCode,
    Person,
    Site,
    VisitorPass,
    utcnow,
)
from server.models.mobile import LoginCodeRequest
from server.services import audit
from server.services.audit import Actor
from server.services.face import templates as face_templates
from server.services.session import DbSession
from server.services.visitors import passes

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 20_000
# Who the audit log names for scheduled runs.
ACTOR = Actor("retention")


class PurgeKind(enum.StrEnum):
    """What a purge removed (the `kind` of its audit entry)."""

    EVENTS = "access_events"
    PASSES = "visitor_passes"
    TEMPLATES = "face_templates"


@dataclass
class SitePurge:
    """What one retention run removed at one site."""

    site_id: int
    site_code: str
    events: int = 0
    passes: int = 0
    templates: int = 0


@dataclass
class RetentionReport:
    """What one retention run removed, per site."""

    at: datetime
    sites: list[SitePurge] = field(default_factory=list)
    # Ended phone-app sessions, spent sign-in codes and old asks for one (not per site: they belong to accounts).
    sign_ins: int = 0

    @property
    def removed(self) -> int:
        """Events, passes, templates and old sign-in records removed over all sites."""
        return sum(s.events + s.passes + s.templates for s in self.sites) + self.sign_ins


@dataclass(frozen=True)
class _Settings:
    # Read before the first commit, which expires the Site object.
    site_id: int
    code: str
    event_days: int
    visitor_days: int
    template_days: int


def run_retention(
    session: DbSession,
    actor: Actor,
    at: datetime | None = None,
    site: Site | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> RetentionReport:
    """Apply every site's retention periods (or one site's) as of `at`.

    Commits as it goes: each chunk of `chunk_rows` events, and each site's passes and templates, is a
    transaction of its own, so a purge of millions of rows never holds one long transaction.
    """
    at = at or utcnow()
    chosen = [site] if site is not None else list(session.scalars(select(Site).order_by(Site.code)))
    settings = [
        _Settings(s.id, s.code, s.event_retention_days, s.visitor_retention_days, s.template_unused_days)
        for s in chosen
    ]
    report = RetentionReport(at)
    for s in settings:
        purge = SitePurge(s.site_id, s.code)
        purge.events = purge_events(session, actor, s.site_id, at - timedelta(days=s.event_days), chunk_rows)
        purge.passes = purge_passes(session, actor, s.site_id, at - timedelta(days=s.visitor_days))
        purge.templates = erase_unused_templates(session, actor, s.site_id, at - timedelta(days=s.template_days))
        report.sites.append(purge)
    if site is None:
        report.sign_ins = purge_sign_ins(session, at)
    return report


# Ended app sessions are kept this long (the resident's device list and the audit trail refer to them).
SESSION_KEEP = timedelta(days=30)
# Sign-in codes live minutes; their rows go a day after they expire, and queued asks for one a day after they were
# made (by then each was sent, dropped or given up: the deliverer gives up within minutes).
CODE_KEEP = timedelta(days=1)


def purge_sign_ins(session: DbSession, at: datetime) -> int:
    """Delete phone-app sessions that ended or ran out over 30 days ago, spent sign-in codes and old code requests."""
    cutoff = at - SESSION_KEEP
    ended = session.execute(
        delete(AppSession).where(or_(AppSession.revoked_at < cutoff, AppSession.refresh_expires_at < cutoff))
    )
    codes = session.execute(delete(LoginCode).where(LoginCode.expires_at < at - CODE_KEEP))
    asks = session.execute(delete(LoginCodeRequest).where(LoginCodeRequest.requested_at < at - CODE_KEEP))
    session.commit()
    count = _rowcount(ended) + _rowcount(codes) + _rowcount(asks)
    if count:
        log.info("retention removed %d ended app sessions, spent sign-in codes and old code requests", count)
    return count


def purge_events(session: DbSession, actor: Actor, site_id: int, cutoff: datetime, chunk_rows: int) -> int:
    """Delete a site's access events that occurred before `cutoff`, `chunk_rows` per transaction."""
    # The subquery walks the (site_id, occurred_at) index; deleting by primary key keeps each chunk cheap.
    doomed = (
        select(AccessEvent.id).where(AccessEvent.site_id == site_id, AccessEvent.occurred_at < cutoff).limit(chunk_rows)
    )
    stmt = delete(AccessEvent).where(AccessEvent.id.in_(doomed)).execution_options(synchronize_session=False)
    committed = 0
    try:
        while True:
            removed = _rowcount(session.execute(stmt))
            if removed < chunk_rows:
                break
            session.commit()
            committed += removed
    except Exception:
        # Chunks already committed stay deleted: audit them before passing the failure on.
        session.rollback()
        if committed:
            _audited(session, actor, site_id, PurgeKind.EVENTS, committed, cutoff, interrupted=True)
            session.commit()
        raise
    # The last chunk commits together with the audit entry for the whole purge.
    total = committed + removed
    _audited(session, actor, site_id, PurgeKind.EVENTS, total, cutoff)
    session.commit()
    return total


def purge_passes(session: DbSession, actor: Actor, site_id: int, cutoff: datetime) -> int:
    """Delete a site's visitor passes (with the visitor's name) that ended before `cutoff`.

    Their events stay, without the link (ON DELETE SET NULL). A pass the worker has not yet expired is
    journalled as ended, so terminals drop it too.
    """
    ended = VisitorPass.site_id == site_id, VisitorPass.valid_until < cutoff
    passes.expire_passes(session, cutoff, site_id)
    removed = _rowcount(session.execute(delete(VisitorPass).where(*ended)))
    _audited(session, actor, site_id, PurgeKind.PASSES, removed, cutoff)
    session.commit()
    return removed


def erase_unused_templates(session: DbSession, actor: Actor, site_id: int, cutoff: datetime) -> int:
    """Erase a site's face templates not matched (or, never matched, not made) since `cutoff`, with receipts."""
    unused = session.scalars(
        select(FaceTemplate)
        .join(Person, Person.id == FaceTemplate.person_id)
        .where(Person.site_id == site_id, func.coalesce(FaceTemplate.last_matched_at, FaceTemplate.created_at) < cutoff)
        .order_by(FaceTemplate.id)
        .options(selectinload(FaceTemplate.person))
    ).all()
    for template in unused:
        face_templates.delete_template(session, actor, template.person, template, ErasureReason.RETENTION)
    _audited(session, actor, site_id, PurgeKind.TEMPLATES, len(unused), cutoff)
    session.commit()
    return len(unused)


def _audited(
    session: DbSession,
    actor: Actor,
    site_id: int,
    kind: PurgeKind,
    count: int,
    cutoff: datetime,
    *,
    interrupted: bool = False,
) -> None:
    """Audit one purge, if it removed anything: what kind, how many, older than when."""
    if not count:
        return
    details: dict[str, Any] = {"kind": kind.value, "count": count, "cutoff": cutoff.isoformat()}
    if interrupted:
        details["interrupted"] = True
    audit.record(session, actor, "retention.purge", "site", site_id, site_id=site_id, details=details)
    log.info("site %d: retention removed %d %s from before %s", site_id, count, kind.value, cutoff.isoformat())


def _rowcount(result: object) -> int:
    return cast(CursorResult[Any], result).rowcount or 0
