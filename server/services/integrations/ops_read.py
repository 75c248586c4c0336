"""What the integration API reads and does, within an API key's reach: events, alarms, the door board, door opens.

A key limited to a site sees that site's items (and the server-wide ones, such as the face-count alarm); another
site's door is "not found" to it, never "forbidden", so a key cannot probe which ids exist elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select

from server.models import Alarm, ApiKey, Door, FeedItem, TerminalCommand, TerminalStatus
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound
from server.services.operations import alarms as operations_alarms
from server.services.operations import door_states, feed
from server.services.session import DbSession
from server.services.terminals import commands


def key_actor(key: ApiKey) -> Actor:
    """The actor an API key's actions are audited under (its public prefix, never the key)."""
    return Actor(f"api-key:{key.prefix}")


def site_scope(key: ApiKey, site_id: int | None) -> list[int] | None:
    """The sites a request covers: the one asked for, within the key's; NotFound for a site outside the key's."""
    if key.site_id is not None and site_id is not None and site_id != key.site_id:
        raise NotFound("There is no such site.")
    chosen = site_id if site_id is not None else key.site_id
    return None if chosen is None else [chosen]


def events_after(
    session: DbSession, key: ApiKey, after: int, limit: int, site_id: int | None, topics: Sequence[str] | None
) -> tuple[list[FeedItem], bool]:
    """Feed items after `after` within the key's reach, oldest first, at most `limit`, and whether more wait."""
    items = feed.items_after(session, after, site_ids=site_scope(key, site_id), topics=topics, limit=limit + 1)
    return items[:limit], len(items) > limit


def alarms(session: DbSession, key: ApiKey, site_id: int | None, open_only: bool, limit: int) -> list[Alarm]:
    """Alarms within the key's reach, newest first: unresolved ones (the alarm service's list), or every one."""
    sites = site_scope(key, site_id)
    if open_only:
        return operations_alarms.open_alarms(session, sites, limit)
    stmt = select(Alarm)
    if sites is not None:
        stmt = stmt.where(or_(Alarm.site_id.in_(sites), Alarm.site_id.is_(None)))
    return list(session.scalars(stmt.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit)))


def board(session: DbSession, key: ApiKey, site_id: int | None) -> list[door_states.DoorLine]:
    """Every door within the key's reach with its live state and terminals' link (the operations screen's board)."""
    return door_states.board(session, site_scope(key, site_id))


def door_in_reach(session: DbSession, key: ApiKey, door_id: int) -> Door:
    """The door, if the key reaches it; NotFound otherwise (another site's door included)."""
    door = session.get(Door, door_id) if 0 < door_id < 2**31 else None
    if door is None or (key.site_id is not None and door.site_id != key.site_id):
        raise NotFound("There is no such door.")
    return door


def open_door(session: DbSession, key: ApiKey, door_id: int, reason: str | None) -> tuple[TerminalCommand, Door]:
    """Ask a terminal serving the door (an online one first) to open it once, through the console's command
    service; audited under the key with the reason."""
    door = door_in_reach(session, key, door_id)
    serving = sorted(door.terminals, key=lambda t: (t.status is not TerminalStatus.ONLINE, t.id))
    if not serving:
        raise Conflict("No terminal serves this door, so it cannot be opened remotely.", code="door_not_served")
    reason = " ".join((reason or "").split()) or f"integration API key {key.name}"
    return commands.open_door_with_reason(session, key_actor(key), serving[0], door.id, reason[:200]), door
