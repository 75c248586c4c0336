"""Registering a person in one step: their details, their access groups and a first key card, all or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from gatehouse_core.keyring import ServerKeys
from server.models import AccessGroup, Person, PersonKind, Site
from server.services.access import access
from server.services.audit import Actor
from server.services.errors import RuleViolation
from server.services.people import credentials, people
from server.services.session import DbSession


def register_person(
    session: DbSession,
    actor: Actor,
    keys: ServerKeys,
    site: Site,
    *,
    full_name: str,
    kind: PersonKind = PersonKind.RESIDENT,
    unit: str | None = None,
    date_of_birth: date | None = None,
    phone: str | None = None,
    groups: Sequence[AccessGroup] = (),
    card_uid: str | None = None,
) -> Person:
    """Create a person, put them in `groups` and register `card_uid` (if given); a refusal creates nothing.

    Everything that can be refused (details, groups of another site, a malformed or taken card) is checked
    before anything is written, so a caller on any surface gets all or nothing without a savepoint.
    """
    people.clean_fields(full_name=full_name, kind=kind, unit=unit, date_of_birth=date_of_birth, phone=phone)
    if any(group.site_id != site.id for group in groups):
        raise RuleViolation("Choose only access groups of the person's own site.", code="foreign_group")
    card_uid = (card_uid or "").strip() or None
    if card_uid is not None:
        credentials.check_new_card(session, keys, site, card_uid)
    person = people.create_person(
        session, actor, site, full_name=full_name, kind=kind, unit=unit, date_of_birth=date_of_birth, phone=phone
    )
    for group in {g.id: g for g in groups}.values():
        access.add_member(session, actor, group, person)
    if card_uid is not None:
        credentials.add_card(session, actor, keys, person, card_uid)
    return person
