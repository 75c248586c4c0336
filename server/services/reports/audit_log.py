"""Reading the audit log for the console: filtered, newest first, keyset-paged on (at, id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from server.models import AuditEntry
from server.services.reports.event_log import Cursor
from server.services.session import DbSession

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    """What to show; every field optional. `until` is exclusive; times are aware UTC."""

    actor: str | None = None  # part of the actor's name, any case
    action: str | None = None  # the action's beginning, e.g. "terminal." or "person.create"
    target_type: str | None = None  # exactly, e.g. "person"
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    """One page of audit entries and where the next (older) page starts."""

    entries: list[AuditEntry]
    older: Cursor | None


def page(session: DbSession, filters: AuditFilters, before: Cursor | None = None, limit: int = PAGE_SIZE) -> AuditPage:
    """Matching entries older than `before`, newest first (the `at` index bounds each page)."""
    conditions: list[Any] = []
    if filters.actor:
        conditions.append(AuditEntry.actor_label.icontains(filters.actor.strip(), autoescape=True))
    if filters.action:
        conditions.append(AuditEntry.action.startswith(filters.action.strip(), autoescape=True))
    if filters.target_type:
        conditions.append(AuditEntry.target_type == filters.target_type.strip())
    if filters.since is not None:
        conditions.append(AuditEntry.at >= filters.since)
    if filters.until is not None:
        conditions.append(AuditEntry.at < filters.until)
    if before is not None:
        conditions.append(AuditEntry.at <= before.at)
        conditions.append(or_(AuditEntry.at < before.at, AuditEntry.id < before.id))
    stmt = select(AuditEntry).where(*conditions).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    found = list(session.scalars(stmt))
    entries = found[:limit]
    older = Cursor(entries[-1].at, entries[-1].id) if len(found) > limit and entries else None
    return AuditPage(entries, older)


def details_text(details: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An entry's details as sorted (key, value) pairs; nested values as compact text."""
    if not details:
        return []
    return [(str(key), _plain(value)) for key, value in sorted(details.items())]


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)
