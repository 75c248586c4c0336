"""Sites and their doors, including the rule that face is never the only way through a door."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from gatehouse_core.wire.records import OfflinePolicy
from gatehouse_core.wire.topics import TopicError, check_ident
from server.models import Door, JournalKind, Site
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.session import DbSession


def create_site(session: DbSession, actor: Actor, *, code: str, name: str, timezone: str = "Asia/Shanghai") -> Site:
    """Create a site; its code names it in MQTT topics and cannot change later."""
    try:
        check_ident(code, "site code")
    except TopicError as exc:
        raise RuleViolation(str(exc), code="bad_site_code") from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleViolation(
            f"The time zone {timezone!r} is not known; use an IANA name such as Asia/Shanghai."
        ) from None
    if session.scalar(select(Site.id).where(Site.code == code)) is not None:
        raise Conflict(f"A site with code {code!r} already exists; choose another code.", code="duplicate_site")
    site = Site(code=code, name=name.strip(), timezone=timezone)
    session.add(site)
    session.flush()
    audit.record(session, actor, "site.create", "site", site.id, site_id=site.id, details={"code": code})
    return site


OFFLINE_ALARM_MINUTES = (1, 10_080)  # up to a week
MAX_OFFLINE_HOURS = (1, 8_760)  # up to a year


@dataclass(frozen=True)
class OfflineBound:
    """How a site's terminals are held when cut off from the server (README: "Bounded offline staleness").

    After `alarm_minutes` without a word from a terminal the server raises a terminal-offline alarm; after
    `max_hours` without a word from the server a terminal applies `policy` (terminals/offline_bound.py).
    """

    alarm_minutes: int
    max_hours: int
    policy: OfflinePolicy

    def check(self) -> None:
        """Refuse values outside their ranges."""
        low, high = OFFLINE_ALARM_MINUTES
        if not low <= self.alarm_minutes <= high:
            raise RuleViolation(
                f"The offline alarm must come after {low} to {high} minutes (a week).", code="bad_offline_alarm"
            )
        low, high = MAX_OFFLINE_HOURS
        if not low <= self.max_hours <= high:
            raise RuleViolation(
                f"The offline bound must be {low} to {high} hours (a year).", code="bad_max_offline_hours"
            )


def offline_bound_of(site: Site) -> OfflineBound:
    """A site's offline settings now."""
    return OfflineBound(site.offline_alarm_minutes, site.max_offline_hours, site.offline_policy)


def set_offline_bound(session: DbSession, actor: Actor, site: Site, bound: OfflineBound) -> bool:
    """Change a site's offline alarm, bound and policy; audited, and journalled when terminals must learn it.

    Terminals hold the bound and policy in their site record; the alarm is the server's alone. Returns whether
    anything changed.
    """
    bound.check()
    old = offline_bound_of(site)
    if bound == old:
        return False
    site.offline_alarm_minutes = bound.alarm_minutes
    site.max_offline_hours = bound.max_hours
    site.offline_policy = bound.policy
    session.flush()
    if (bound.max_hours, bound.policy) != (old.max_hours, old.policy):
        # Every terminal of the site holds the site record: each gets its roster again, as when face is switched.
        journal.append(session, site.id, JournalKind.ROSTER_RESET, {"reason": "offline_bound"})
    audit.record(
        session,
        actor,
        "site.offline_bound",
        "site",
        site.id,
        site_id=site.id,
        details={
            "offline_alarm_minutes": bound.alarm_minutes,
            "max_offline_hours": bound.max_hours,
            "offline_policy": bound.policy.value,
            "before": {
                "offline_alarm_minutes": old.alarm_minutes,
                "max_offline_hours": old.max_hours,
                "offline_policy": old.policy.value,
            },
        },
    )
    return True


def get_site(session: DbSession, code: str) -> Site:
    """Look a site up by code."""
    site = session.scalar(select(Site).where(Site.code == code))
    if site is None:
        raise NotFound(f"There is no site with code {code!r}.")
    return site


def get_door(session: DbSession, site: Site, name: str) -> Door:
    """Look a door of `site` up by its name."""
    door = session.scalar(select(Door).where(Door.site_id == site.id, Door.name == name.strip()))
    if door is None:
        raise NotFound(f"Site {site.code} has no door named {name!r}.")
    return door


@dataclass(frozen=True)
class DoorMethods:
    """Entry methods a door accepts."""

    face: bool = False
    card: bool = True
    id_document: bool = True
    app_code: bool = True

    def check(self) -> None:
        """Principle 1: a door that accepts face accepts card, ID document and app code as well."""
        missing = [
            label
            for label, on in (("key card", self.card), ("ID document", self.id_document), ("app code", self.app_code))
            if not on
        ]
        if self.face and missing:
            raise RuleViolation(
                "A door that accepts face must also accept key card, ID document and app code, so that nobody "
                f"has to give their face to get in. Turn on {', '.join(missing)}, or turn face off for this door.",
                code="face_needs_alternatives",
            )
        if not (self.face or self.card or self.id_document or self.app_code):
            raise RuleViolation("A door must accept at least one entry method.", code="no_entry_method")


def save_door(
    session: DbSession, actor: Actor, site: Site, name: str, methods: DoorMethods, door: Door | None = None
) -> Door:
    """Create or update a door; refuses any policy where face would stand alone."""
    methods.check()
    name = _door_name(session, site, name, door)
    created = door is None
    if door is None:
        door = Door(site=site)
        session.add(door)
    door.name = name
    door.accepts_face = methods.face
    door.accepts_card = methods.card
    door.accepts_id_document = methods.id_document
    door.accepts_app_code = methods.app_code
    session.flush()
    policy = {
        "door": door.id,
        "face": methods.face,
        "card": methods.card,
        "id_document": methods.id_document,
        "app_code": methods.app_code,
    }
    journal.append(session, site.id, JournalKind.DOOR_POLICY, policy)
    audit.record(
        session, actor, "door.create" if created else "door.update", "door", door.id, site_id=site.id, details=policy
    )
    return door


def _door_name(session: DbSession, site: Site, name: str, door: Door | None) -> str:
    """The stripped name, refused if empty or used by another door of the site."""
    name = name.strip()
    if not name:
        raise RuleViolation("A door needs a name.", code="door_name_missing")
    clash = session.scalar(select(Door.id).where(Door.site_id == site.id, Door.name == name))
    if clash is not None and (door is None or clash != door.id):
        raise Conflict(
            f"Site {site.code} already has a door named {name!r}; choose another name.", code="duplicate_door"
        )
    return name


def methods_of(door: Door) -> DoorMethods:
    """The entry methods a door accepts now."""
    return DoorMethods(
        face=door.accepts_face,
        card=door.accepts_card,
        id_document=door.accepts_id_document,
        app_code=door.accepts_app_code,
    )


def edit_door(session: DbSession, actor: Actor, door: Door, name: str, methods: DoorMethods) -> Door:
    """Update a door from the console: unchanged methods are not journaled again (terminals never see names)."""
    methods.check()
    if methods != methods_of(door):
        return save_door(session, actor, door.site, name, methods, door)
    name = _door_name(session, door.site, name, door)
    if name != door.name:
        door.name = name
        session.flush()
        audit.record(session, actor, "door.rename", "door", door.id, site_id=door.site_id, details={"name": name})
    return door
