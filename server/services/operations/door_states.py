"""Doors' live state as their terminals publish it, and the door board the operations screen shows.

A terminal publishes every door's state (retained) on each change and on each connect; the worker applies it
here. Only doors the terminal serves are taken (another terminal's door, or one removed since, is logged and
ignored), each real change writes a `door.state` feed item, and a door that is closed again (locked or
unlocked) ends its forced-open and held-open alarms. A republished state (a reconnect) changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gatehouse_core.wire.messages import DoorState, DoorStates, DoorStatus
from server.models import (
    Alarm,
    AlarmKind,
    Door,
    DoorLiveState,
    DoorOverride,
    FeedKind,
    Site,
    Terminal,
    TerminalStatus,
    terminal_doors,
    utcnow,
)
from server.services.operations import alarms, feed
from server.services.session import DbSession

log = logging.getLogger(__name__)

# States of a closed door: its forced-open and held-open alarms end when it is back in one of them.
CLOSED = frozenset({DoorState.LOCKED, DoorState.UNLOCKED})
# The alarms a door's closing ends.
DOOR_ALARMS = (AlarmKind.DOOR_FORCED, AlarmKind.DOOR_HELD_OPEN)
# The board's state of a door no terminal has reported.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TerminalLink:
    """A terminal serving a door, and whether the server hears from it."""

    id: int
    name: str
    status: TerminalStatus
    last_seen_at: datetime | None


@dataclass(frozen=True)
class DoorLine:
    """A door on the board: its live state ("unknown" until a terminal reports it) and its terminals' link."""

    door_id: int
    door: str
    site_id: int
    site: str
    state: str  # a DoorState value, or UNKNOWN
    supervised: bool  # the door has a contact: open, held and forced are seen
    since: datetime | None
    reported_at: datetime | None
    terminals: tuple[TerminalLink, ...]
    mode: str | None = None  # a live lockdown or emergency release (OverrideMode value); None: normal

    @property
    def online(self) -> bool:
        """Some terminal of the door is online."""
        return any(t.status is TerminalStatus.ONLINE for t in self.terminals)


def apply(session: DbSession, terminal: Terminal, states: DoorStates, at: datetime | None = None) -> list[int]:
    """Record a terminal's door states; the ids of the doors whose state changed. No commit."""
    at = at or utcnow()
    served = set(session.scalars(select(terminal_doors.c.door_id).where(terminal_doors.c.terminal_id == terminal.id)))
    statuses = {status.door: status for status in states.doors}
    foreign = sorted(set(statuses) - served)
    if foreign:
        log.warning("terminal %s reported the state of door(s) %s it does not serve; ignored", terminal.ident, foreign)
    mine = {door: status for door, status in statuses.items() if door in served}
    if not mine:
        return []
    known = {row.door_id: row for row in session.scalars(select(DoorLiveState).where(DoorLiveState.door_id.in_(mine)))}
    changed: list[int] = []
    items: list[feed.NewItem] = []
    for door_id, status in sorted(mine.items()):
        row = known.get(door_id)
        if row is not None and status.since < row.since:
            continue  # older than what another terminal of the door reported since
        if row is not None and _same(row, status):
            row.reported_at = at
            continue
        if row is None:
            row = DoorLiveState(door_id=door_id)
            session.add(row)
        row.terminal_id = terminal.id
        row.state = status.state
        row.supervised = status.supervised
        row.since = status.since
        row.reported_at = at
        changed.append(door_id)
        items.append(feed.NewItem(FeedKind.DOOR, "door.state", door_id, terminal.site_id, _payload(status, terminal)))
        if status.state in CLOSED:
            _closed(session, door_id, status.since, at)
    feed.record(session, items)
    return changed


def alarms_from_events(session: DbSession, events: Iterable[Any]) -> list[Alarm]:
    """Raise the alarms of terminal alarm events just stored (alarms.raise_from_events); a door alarm whose door
    is known closed since is resolved at once (the state can arrive before a delayed event). No commit."""
    raised = alarms.raise_from_events(session, events)
    doors = {a.door_id for a in raised if a.kind in DOOR_ALARMS and a.door_id is not None}
    if doors:
        live = {
            row.door_id: row
            for row in session.scalars(select(DoorLiveState).where(DoorLiveState.door_id.in_(doors)))
            if row.state in CLOSED
        }
        for alarm in raised:
            row = live.get(alarm.door_id) if alarm.door_id is not None else None
            if alarm.kind in DOOR_ALARMS and row is not None and row.since >= alarm.raised_at:
                alarms.resolve_cause(session, alarm.kind, ids=[alarm.id], comment=_CLOSED_AGAIN)
    return raised


def board(session: DbSession, site_ids: Iterable[int] | None = None) -> list[DoorLine]:
    """Every door (of `site_ids`, when given) by site and name, with its live state and its terminals' link."""
    stmt = (
        select(Door.id, Door.name, Site.id, Site.name, DoorLiveState)
        .join(Site, Site.id == Door.site_id)
        .outerjoin(DoorLiveState, DoorLiveState.door_id == Door.id)
        .order_by(Site.name, Site.id, Door.name, Door.id)
    )
    if site_ids is not None:
        stmt = stmt.where(Door.site_id.in_(list(site_ids)))
    rows = session.execute(stmt).all()
    links: dict[int, list[TerminalLink]] = defaultdict(list)
    if rows:
        served = session.execute(
            select(terminal_doors.c.door_id, Terminal.id, Terminal.name, Terminal.status, Terminal.last_seen_at)
            .join(Terminal, Terminal.id == terminal_doors.c.terminal_id)
            .where(terminal_doors.c.door_id.in_([row[0] for row in rows]))
            .order_by(Terminal.name, Terminal.id)
        )
        for door_id, *terminal in served:
            links[door_id].append(TerminalLink(*terminal))
    modes = live_modes(session, [row[0] for row in rows])
    return [
        DoorLine(
            door_id=door_id,
            door=door,
            site_id=site_id,
            site=site,
            state=live.state.value if live is not None else UNKNOWN,
            supervised=live.supervised if live is not None else False,
            since=live.since if live is not None else None,
            reported_at=live.reported_at if live is not None else None,
            terminals=tuple(links[door_id]),
            mode=modes.get(door_id),
        )
        for door_id, door, site_id, site, live in rows
    ]


def live_modes(session: DbSession, door_ids: Iterable[int]) -> dict[int, str]:
    """Each door's live lockdown or emergency release, the one started last deciding (as on the terminal)."""
    wanted = list(door_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(DoorOverride.door_id, DoorOverride.mode)
        .where(DoorOverride.door_id.in_(wanted), DoorOverride.lifted_at.is_(None))
        .order_by(DoorOverride.started_at, DoorOverride.id)
    )
    return {door_id: mode.value for door_id, mode in rows}


def feed_modes(session: DbSession, site_id: int, door_ids: Iterable[int]) -> None:
    """A door.state feed item for each door whose mode was just started or lifted, so live screens redraw it."""
    wanted = set(door_ids)
    items = [
        feed.NewItem(FeedKind.DOOR, "door.state", line.door_id, site_id, door_payload(line))
        for line in board(session, [site_id])
        if line.door_id in wanted
    ]
    feed.record(session, items)


def door_payload(line: DoorLine) -> dict[str, Any]:
    """A board line as the integration API shows it."""
    return {
        "door_id": line.door_id,
        "door": line.door,
        "site_id": line.site_id,
        "state": line.state,
        "supervised": line.supervised,
        "since": line.since,
        "mode": line.mode,
        "terminals": [{"id": t.id, "name": t.name, "status": t.status.value} for t in line.terminals],
    }


_CLOSED_AGAIN = "The door is closed again."


def _closed(session: DbSession, door_id: int, since: datetime, at: datetime) -> None:
    """End the door's forced-open and held-open alarms raised before it closed."""
    for kind in DOOR_ALARMS:
        alarms.resolve_cause(session, kind, door_id=door_id, raised_before=since, at=at, comment=_CLOSED_AGAIN)


def _same(row: DoorLiveState, status: DoorStatus) -> bool:
    return (row.state, row.supervised, row.since) == (status.state, status.supervised, status.since)


def _payload(status: DoorStatus, terminal: Terminal) -> dict[str, Any]:
    return {
        "door_id": status.door,
        "site_id": terminal.site_id,
        "terminal_id": terminal.id,
        "state": status.state.value,
        "supervised": status.supervised,
        "since": status.since,
    }
