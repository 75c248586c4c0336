"""A site's usual access group: the one new people usually join (Residents, say), offered first by every form.

It is set explicitly on the group. Where no group is marked, the group most of the site's active people
belong to stands in (the only group, if nobody is in any yet), so a form never defaults to whichever name
sorts first.
"""

from __future__ import annotations

from sqlalchemy import func, select

from server.models import AccessGroup, Person, PersonStatus, Site, access_group_members
from server.services import audit
from server.services.audit import Actor
from server.services.errors import RuleViolation
from server.services.session import DbSession


def usual_group(session: DbSession, site: Site) -> AccessGroup | None:
    """The group marked usual at `site`, else the one most active people belong to, else the only group."""
    marked = session.scalar(select(AccessGroup).where(AccessGroup.site_id == site.id, AccessGroup.usual.is_(True)))
    if marked is not None:
        return marked
    members = func.count(access_group_members.c.person_id)
    busiest = session.execute(
        select(AccessGroup, members)
        .join(access_group_members, access_group_members.c.group_id == AccessGroup.id)
        .join(Person, Person.id == access_group_members.c.person_id)
        .where(AccessGroup.site_id == site.id, Person.status == PersonStatus.ACTIVE)
        .group_by(AccessGroup.id)
        .order_by(members.desc(), AccessGroup.id)
        .limit(1)
    ).first()
    if busiest is not None:
        return busiest[0]
    groups = session.scalars(select(AccessGroup).where(AccessGroup.site_id == site.id).limit(2)).all()
    return groups[0] if len(groups) == 1 else None


def set_usual_group(session: DbSession, actor: Actor, site: Site, group: AccessGroup | None) -> None:
    """Mark `group` as the site's usual group (None: no group is marked; the busiest one stands in)."""
    if group is not None and group.site_id != site.id:
        raise RuleViolation("The usual group must be one of the site's own access groups.", code="foreign_group")
    marked = session.scalars(select(AccessGroup).where(AccessGroup.site_id == site.id, AccessGroup.usual.is_(True)))
    changed = [old for old in marked if old is not group]
    for old in changed:
        old.usual = False
    # The old mark goes first, so the one-per-site index never sees two.
    session.flush()
    if group is not None and not group.usual:
        group.usual = True
        changed.append(group)
        session.flush()
    # Terminals never see it (it only decides what forms offer), so nothing is journaled.
    for each in changed:
        details = {"usual": {"from": not each.usual, "to": each.usual}}
        audit.record(session, actor, "group.update", "access_group", each.id, site_id=site.id, details=details)
