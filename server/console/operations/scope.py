"""Which sites and doors a console user watches on the operations screen."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server.models import AccessGroup, ConsoleUser, Site, access_group_doors
from server.services.session import DbSession


@dataclass(frozen=True)
class Scope:
    """Sites (None: every site) and doors (None: every door of those sites) the screen shows."""

    site_ids: tuple[int, ...] | None = None
    door_ids: frozenset[int] | None = None

    def shows_site(self, site_id: int | None) -> bool:
        """Whether something of this site (None: of no site) belongs on the screen."""
        return site_id is None or self.site_ids is None or site_id in self.site_ids

    def shows_door(self, door_id: int | None) -> bool:
        """Whether something at this door (None: at no door, e.g. a terminal's alarm) belongs on the screen."""
        return door_id is None or self.door_ids is None or door_id in self.door_ids


def user_sites(session: DbSession, user: ConsoleUser) -> tuple[int, ...] | None:
    """The sites `user` may watch (None: every site). Console users are not tied to sites yet, so every user sees
    every site; this is the one place to narrow it when they are."""
    del session, user
    return None


def scope_for(session: DbSession, user: ConsoleUser, site_id: int | None, group_id: int | None) -> Scope:
    """The user's sites, narrowed to the chosen site and to the doors of the chosen door group (access group)."""
    allowed = user_sites(session, user)
    sites = allowed
    if site_id is not None:
        sites = (site_id,) if allowed is None or site_id in allowed else ()
    doors: frozenset[int] | None = None
    if group_id is not None:
        group_site = session.scalar(select(AccessGroup.site_id).where(AccessGroup.id == group_id))
        if group_site is None or (sites is not None and group_site not in sites):
            return Scope(site_ids=(), door_ids=frozenset())
        sites = (group_site,)
        doors = frozenset(
            session.scalars(select(access_group_doors.c.door_id).where(access_group_doors.c.group_id == group_id))
        )
    if sites is not None:
        known = set(session.scalars(select(Site.id).where(Site.id.in_(sites))))
        sites = tuple(s for s in sites if s in known)
    return Scope(site_ids=sites, door_ids=doors)
