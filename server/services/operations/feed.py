"""The operations feed: what happened, in order, written in the transaction that made it happen.

Each item is an access event stored, an alarm raised, acknowledged or resolved, or a door's state changed. Its id
only grows, so a reader that remembers the last id it saw misses nothing: the operations screen's Server-Sent
Events carry it as the event id (a reconnecting browser sends it back as Last-Event-ID), and each webhook keeps
its cursor in it. The payload is what the integration API and webhooks show: ids, times, method, decision,
reason, the person's pseudonym, never a name, a biometric or a card or ID value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from server.models import FeedItem, FeedKind, utcnow
from server.services.session import DbSession

# The webhook event types ("topics") a feed item can have.
ACCESS_TOPICS = ("access.granted", "access.denied", "access.alarm")
ALARM_TOPICS = ("alarm.raised", "alarm.acknowledged", "alarm.resolved")
DOOR_TOPICS = ("door.state",)
TOPICS = ACCESS_TOPICS + ALARM_TOPICS + DOOR_TOPICS


@dataclass(frozen=True)
class NewItem:
    """A feed item to write."""

    kind: FeedKind
    topic: str
    ref_id: int
    site_id: int | None
    payload: dict[str, Any]
    at: datetime | None = None


def record(session: DbSession, items: Sequence[NewItem]) -> None:
    """Write `items` in one statement (in the caller's transaction; does not commit)."""
    if not items:
        return
    now = utcnow()
    for item in items:
        if item.topic not in TOPICS:
            raise ValueError(f"unknown feed topic {item.topic!r}")
    session.execute(
        insert(FeedItem),
        [
            {
                "at": item.at or now,
                "site_id": item.site_id,
                "kind": item.kind,
                "topic": item.topic,
                "ref_id": item.ref_id,
                "payload": json.dumps(item.payload, separators=(",", ":"), sort_keys=True, default=_jsonable),
            }
            for item in items
        ],
    )


def access_topic(decision: str) -> str:
    """The feed topic of an access event with this decision (grant, deny, alarm)."""
    return {"grant": "access.granted", "deny": "access.denied"}.get(str(decision), "access.alarm")


def event_item(row: Any) -> NewItem:
    """The feed item of a stored access event (a row with the AccessEvent columns named below)."""
    payload = {
        "id": row.id,
        "uid": row.event_uid,
        "occurred_at": row.occurred_at,
        "site_id": row.site_id,
        "door_id": row.door_id,
        "terminal_id": row.terminal_id,
        "method": str(row.method),
        "decision": str(row.decision),
        "reason": row.reason,
        "person": row.person_pseudonym,
    }
    return NewItem(FeedKind.EVENT, access_topic(row.decision), row.id, row.site_id, payload)


def items_after(
    session: DbSession,
    after_id: int,
    *,
    site_ids: Iterable[int] | None = None,
    topics: Iterable[str] | None = None,
    limit: int = 200,
) -> list[FeedItem]:
    """Items with an id above `after_id`, oldest first, at most `limit`; only `site_ids`' (and site-less) ones
    and only `topics` when given."""
    stmt = select(FeedItem).where(FeedItem.id > after_id)
    if site_ids is not None:
        stmt = stmt.where(FeedItem.site_id.in_(list(site_ids)) | FeedItem.site_id.is_(None))
    if topics is not None:
        stmt = stmt.where(FeedItem.topic.in_(list(topics)))
    return list(session.scalars(stmt.order_by(FeedItem.id).limit(limit)))


def latest_id(session: DbSession) -> int:
    """The id of the newest item (0 when there is none): where a reader with no history starts."""
    return session.scalar(select(func.max(FeedItem.id))) or 0


def payload(item: FeedItem) -> dict[str, Any]:
    """An item's payload as data."""
    data: dict[str, Any] = json.loads(item.payload)
    return data


def prune(session: DbSession, before: datetime) -> int:
    """Delete items written before `before` (the feed is for catching up, not an archive); how many."""
    result = session.execute(delete(FeedItem).where(FeedItem.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def _jsonable(value: Any) -> Any:
    """Times as ISO 8601 (UTC, with offset); anything else by its string."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
