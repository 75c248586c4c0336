"""Seed data for the demo: one site, three doors, an access group, twenty residents with cards, one app account."""

from __future__ import annotations

import random
from datetime import date

from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS, Window
from server.models import Person, PersonKind, Site
from server.services.access import access, sites
from server.services.access.sites import DoorMethods
from server.services.accounts import app_accounts
from server.services.accounts.users import generate_password
from server.services.audit import Actor
from server.services.people import credentials, people
from server.services.session import DbSession

DEMO_SITE = "maple-court"
DEMO_CARD = "04A2B3C4D5E6F7"
# The first resident (Wang Wei, 1-101) also has the phone app: this username, or this phone for a code.
DEMO_APP_USER = "wangwei"
DEMO_PHONE = "+86 138 0013 8000"
_GIVEN = ["Wei", "Fang", "Min", "Jun", "Lei", "Hui", "Ying", "Tao", "Jing", "Hao"]
_FAMILY = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu"]


def seed_demo(session: DbSession, keys: ServerKeys) -> Site:
    """Create the demo site unless it exists; returns it."""
    existing = session.scalar(select(Site).where(Site.code == DEMO_SITE))
    if existing is not None:
        return existing
    actor = Actor("demo")
    rng = random.Random(7)  # noqa: S311 - demo names, not security
    site = sites.create_site(session, actor, code=DEMO_SITE, name="Maple Court", timezone="Asia/Shanghai")
    north = sites.save_door(session, actor, site, "North gate", DoorMethods(face=True))
    east = sites.save_door(session, actor, site, "East pedestrian gate", DoorMethods())
    garage = sites.save_door(session, actor, site, "Garage", DoorMethods(id_document=True, app_code=True))
    residents = access.create_group(session, actor, site, "Residents", [north, east, garage], ALWAYS.windows)
    access.create_group(
        session,
        actor,
        site,
        "Cleaning staff",
        [east],
        [Window(d, 7 * 60, 19 * 60) for d in range(5)],
        open_on_holidays=False,
    )
    for i in range(20):
        person = people.create_person(
            session,
            actor,
            site,
            full_name=f"{_FAMILY[i % 10]} {_GIVEN[(i * 3) % 10]}",
            unit=f"{1 + i // 4}-{101 + (i % 4)}",
            date_of_birth=date(1950 + rng.randrange(55), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            phone=DEMO_PHONE if i == 0 else None,
        )
        access.add_member(session, actor, residents, person)
        # The first resident's card has a known UID, so the README can show it at the simulated terminal.
        uid = DEMO_CARD if i == 0 else f"04{rng.getrandbits(48):012X}"
        credentials.add_card(session, actor, keys, person, uid)
    return site


def seed_app_account(session: DbSession, site: Site) -> str:
    """Turn the phone app on for the site's first resident with a fresh password; returns the password."""
    first = session.scalar(
        select(Person).where(Person.site_id == site.id, Person.kind == PersonKind.RESIDENT).order_by(Person.id)
    )
    if first is None:
        raise LookupError(f"the demo site {site.code} has no resident")
    password = generate_password()
    app_accounts.enable_account(session, Actor("demo"), first, username=DEMO_APP_USER, password=password)
    return password
