"""What the operations screen shows, read in a few queries: the door board, open alarms and feed rows.

The same rows feed the first paint and the live stream, so a row the stream inserts looks like one the page drew.
People appear by name only when they are staff; everyone else by pseudonym (a guard needs to know that a known
resident came in, not who)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.console.operations.scope import Scope
from server.models import (
    Alarm,
    Door,
    FeedItem,
    FeedKind,
    Person,
    PersonKind,
    Site,
    utcnow,
)
from server.services.operations import alarms, door_states, feed
from server.services.reports import timefmt
from server.services.session import DbSession

# The feed's first paint shows this many events; the page's script keeps at most FEED_CAP rows.
FEED_ROWS = 50
FEED_CAP = 200
ALARM_ROWS = 100


@dataclass(frozen=True)
class DoorRow:
    """One door on the board: its live state and its terminal's link."""

    door_id: int
    door: str
    site_id: int
    site: str
    timezone: str
    state: str  # a DoorState value, or "unknown"
    since: datetime | None
    terminals: str | None  # the names of the terminals serving it
    link: str  # online, offline, unknown (never reported) or none (no terminal serves the door)
    mode: str | None = None  # a live lockdown or emergency release


@dataclass(frozen=True)
class AlarmRow:
    """One open alarm in the inbox."""

    id: int
    kind: str
    severity: str
    site: str | None
    timezone: str
    door: str | None
    message: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    resolved: bool


@dataclass(frozen=True)
class FeedRow:
    """One access event in the live feed."""

    feed_id: int
    occurred_at: datetime | None
    timezone: str
    site: str
    door: str | None
    door_id: int | None
    who: str | None  # a staff member's name, else the pseudonym
    staff: bool
    method: str
    reason: str
    decision: str


class Places:
    """Door and site names and time zones, read once and again only when an unknown id turns up."""

    def __init__(self) -> None:
        self.doors: dict[int, tuple[str, int]] = {}
        self.sites: dict[int, tuple[str, str]] = {}

    def load(self, session: DbSession) -> None:
        """Read every site and door (a few hundred rows at most)."""
        self.sites = {i: (n, tz) for i, n, tz in session.execute(select(Site.id, Site.name, Site.timezone))}
        self.doors = {i: (n, s) for i, n, s in session.execute(select(Door.id, Door.name, Door.site_id))}

    def ensure(self, session: DbSession, door_ids: Iterable[int | None], site_ids: Iterable[int | None]) -> None:
        """Read again if any of these ids is new (a door or site added since the stream began)."""
        if any(d is not None and d not in self.doors for d in door_ids) or any(
            s is not None and s not in self.sites for s in site_ids
        ):
            self.load(session)

    def site(self, site_id: int | None) -> tuple[str, str]:
        """A site's name and zone ('' and UTC when unknown)."""
        return self.sites.get(site_id, ("", "UTC")) if site_id is not None else ("", "UTC")

    def door(self, door_id: int | None) -> str | None:
        """A door's name, if known."""
        found = self.doors.get(door_id) if door_id is not None else None
        return found[0] if found else None


# ---- door board ---------------------------------------------------------------------------------------------------


def board(session: DbSession, scope: Scope, places: Places) -> list[DoorRow]:
    """Every door in scope with its live state and terminal link, by site and door name."""
    if scope.site_ids == () or scope.door_ids == frozenset():
        return []
    lines = [line for line in door_states.board(session, site_ids=scope.site_ids) if scope.shows_door(line.door_id)]
    places.ensure(session, [line.door_id for line in lines], [line.site_id for line in lines])
    return [door_row(line, places) for line in lines]


def board_row(session: DbSession, door_id: int, site_id: int | None, places: Places) -> DoorRow | None:
    """One door's board row (after its state changed)."""
    lines = door_states.board(session, site_ids=[site_id] if site_id is not None else None)
    line = next((line for line in lines if line.door_id == door_id), None)
    if line is None:
        return None
    places.ensure(session, [door_id], [line.site_id])
    return door_row(line, places)


def door_row(line: door_states.DoorLine, places: Places) -> DoorRow:
    """A door board line as the screen shows it: its terminals' link summed up as one status."""
    statuses = {t.status.value for t in line.terminals}
    if not line.terminals:
        link = "none"
    elif "online" in statuses:
        link = "online"
    elif "offline" in statuses:
        link = "offline"
    else:
        link = "unknown"
    return DoorRow(
        door_id=line.door_id,
        door=line.door,
        site_id=line.site_id,
        site=line.site,
        timezone=places.site(line.site_id)[1],
        state=line.state,
        since=line.since,
        terminals=", ".join(t.name for t in line.terminals) or None,
        link=link,
        mode=line.mode,
    )


# ---- alarms -------------------------------------------------------------------------------------------------------


def open_alarms(session: DbSession, scope: Scope, places: Places) -> list[AlarmRow]:
    """Open (unresolved) alarms in scope, newest first."""
    if scope.site_ids == ():
        return []
    found = alarms.open_alarms(session, site_ids=scope.site_ids, limit=ALARM_ROWS)
    wanted = [a for a in found if scope.shows_door(a.door_id)]
    places.ensure(session, [a.door_id for a in wanted], [a.site_id for a in wanted])
    return sorted((alarm_row(a, places) for a in wanted), key=lambda row: (row.raised_at, row.id), reverse=True)


def alarm_row(alarm: Alarm, places: Places) -> AlarmRow:
    """An alarm as the inbox shows it."""
    site, zone = places.site(alarm.site_id)
    return AlarmRow(
        id=alarm.id,
        kind=str(alarm.kind),
        severity=str(alarm.severity),
        site=site or None,
        timezone=zone,
        door=places.door(alarm.door_id),
        message=alarm.message,
        raised_at=alarm.raised_at,
        acknowledged_at=alarm.acknowledged_at,
        acknowledged_by=alarm.acknowledged_by,
        ack_comment=alarm.ack_comment,
        resolved=alarm.resolved_at is not None,
    )


# ---- feed ---------------------------------------------------------------------------------------------------------


def recent_feed(session: DbSession, scope: Scope, up_to: int, places: Places) -> list[FeedRow]:
    """The newest access events in scope with a feed id up to `up_to`, newest first (the feed's first paint)."""
    if scope.site_ids == () or scope.door_ids == frozenset():
        return []
    stmt = select(FeedItem).where(FeedItem.id <= up_to, FeedItem.kind == FeedKind.EVENT)
    if scope.site_ids is not None:
        stmt = stmt.where(FeedItem.site_id.in_(scope.site_ids))
    # A door group filter is applied to the payload: read a few pages' worth and keep the group's events.
    read = FEED_ROWS if scope.door_ids is None else FEED_ROWS * 8
    items = list(session.scalars(stmt.order_by(FeedItem.id.desc()).limit(read)))
    rows = feed_rows(session, items, scope, places)
    return rows[:FEED_ROWS]


def feed_rows(session: DbSession, items: Sequence[FeedItem], scope: Scope, places: Places) -> list[FeedRow]:
    """Access-event feed items as rows (in the order given), those outside `scope` left out."""
    events = [(item, feed.payload(item)) for item in items if item.kind == FeedKind.EVENT]
    events = [(item, data) for item, data in events if scope.shows_door(data.get("door_id"))]
    if not events:
        return []
    places.ensure(session, [data.get("door_id") for _, data in events], [item.site_id for item, _ in events])
    staff = staff_names(session, {str(data["person"]) for _, data in events if data.get("person")})
    rows = []
    for item, data in events:
        site, zone = places.site(item.site_id)
        pseudonym = data.get("person")
        rows.append(
            FeedRow(
                feed_id=item.id,
                occurred_at=_when(data.get("occurred_at")),
                timezone=zone,
                site=site,
                door=places.door(data.get("door_id")),
                door_id=data.get("door_id"),
                who=staff.get(pseudonym, pseudonym) if pseudonym else None,
                staff=pseudonym in staff,
                method=str(data.get("method") or EntryMethod.REMOTE.value),
                reason=str(data.get("reason") or ""),
                decision=str(data.get("decision") or Decision.ALARM.value),
            )
        )
    return rows


def staff_names(session: DbSession, pseudonyms: set[str]) -> dict[str, str]:
    """Names of the staff among these pseudonyms (residents and visitors stay pseudonymous on this screen)."""
    if not pseudonyms:
        return {}
    found = session.execute(
        select(Person.pseudonym, Person.full_name).where(
            Person.pseudonym.in_(pseudonyms), Person.kind == PersonKind.STAFF
        )
    )
    return {pseudonym: name for pseudonym, name in found}


def _when(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def short_time(value: datetime | None, zone: str, now: datetime | None = None) -> Markup:
    """A <time> element for a busy screen: the site's local time of day (with the date when not today), the
    full time with its zone as the tooltip; '—' when unknown."""
    if value is None:
        return Markup("—")
    local = value.astimezone(timefmt.zone(zone))
    today = (now or utcnow()).astimezone(timefmt.zone(zone)).date()
    shown = f"{local:%H:%M:%S}" if local.date() == today else f"{local:%Y-%m-%d %H:%M}"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        value.astimezone(UTC).isoformat(), timefmt.site_time(value, zone, seconds=True), shown
    )
