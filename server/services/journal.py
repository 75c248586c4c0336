"""The per-site change journal (transactional outbox) that feeds terminal sync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update

from server.models import JournalEntry, JournalKind, Site, utcnow
from server.services.session import DbSession


def append(session: DbSession, site_id: int, kind: JournalKind, payload: dict[str, Any]) -> JournalEntry:
    """Add a journal entry with the site's next sequence number, in the caller's transaction.

    The counter row is incremented with UPDATE ... RETURNING, which takes the row lock on PostgreSQL
    and the write lock on SQLite, so concurrent writers get distinct, gap-free sequence numbers that
    commit or roll back together with the change they describe.
    """
    seq = session.execute(
        update(Site).where(Site.id == site_id).values(journal_seq=Site.journal_seq + 1).returning(Site.journal_seq)
    ).scalar_one()
    entry = JournalEntry(site_id=site_id, seq=seq, kind=kind, payload=payload)
    session.add(entry)
    return entry


def entries_after(session: DbSession, site_id: int, seq: int, limit: int = 1000) -> list[JournalEntry]:
    """Journal entries of a site with sequence numbers above `seq`, oldest first."""
    stmt = (
        select(JournalEntry)
        .where(JournalEntry.site_id == site_id, JournalEntry.seq > seq)
        .order_by(JournalEntry.seq)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def prune(session: DbSession, older_than: timedelta) -> int:
    """Drop published entries older than `older_than`; terminals further behind get a snapshot instead."""
    cutoff = utcnow() - older_than
    result = session.execute(
        delete(JournalEntry).where(JournalEntry.published_at.is_not(None), JournalEntry.created_at < cutoff)
    )
    return cast(CursorResult[Any], result).rowcount or 0
