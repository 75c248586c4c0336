"""A site's usual access group: marked explicitly, else the busiest group stands in, never the first by name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AuditEntry
from server.services.access import access
from server.services.access.usual_group import set_usual_group, usual_group
from server.services.errors import RuleViolation
from tests.conftest import TEST_ACTOR


@pytest.fixture
def site_groups(make_site):
    site = make_site()
    cleaning = access.create_group(db.session, TEST_ACTOR, site, "Cleaning staff", [], ALWAYS.windows)
    residents = access.create_group(db.session, TEST_ACTOR, site, "Residents", [], ALWAYS.windows)
    db.session.commit()
    return site, cleaning, residents


def test_unset_and_nobody_in_a_group_means_no_default(site_groups):
    site, _cleaning, _residents = site_groups
    assert usual_group(db.session, site) is None


def test_the_only_group_is_the_usual_one(make_site):
    site = make_site()
    only = access.create_group(db.session, TEST_ACTOR, site, "Everyone", [], ALWAYS.windows)
    assert usual_group(db.session, site) is only


def test_unset_falls_back_to_the_group_most_people_belong_to(site_groups, make_person):
    site, cleaning, residents = site_groups
    for name in ("A", "B"):
        access.add_member(db.session, TEST_ACTOR, residents, make_person(site, name))
    access.add_member(db.session, TEST_ACTOR, cleaning, make_person(site, "C"))
    db.session.commit()
    assert usual_group(db.session, site) is residents


def test_the_marked_group_wins_and_moving_the_mark_is_audited(site_groups, make_person):
    site, cleaning, residents = site_groups
    set_usual_group(db.session, TEST_ACTOR, site, cleaning)
    set_usual_group(db.session, TEST_ACTOR, site, residents)
    db.session.commit()
    assert usual_group(db.session, site) is residents and not cleaning.usual
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "group.update")).all()
    assert [e.details["usual"]["to"] for e in entries] == [True, False, True]
    set_usual_group(db.session, TEST_ACTOR, site, None)
    db.session.commit()
    assert not residents.usual


def test_a_group_of_another_site_is_refused(site_groups, make_site):
    site, _cleaning, _residents = site_groups
    elsewhere = access.create_group(db.session, TEST_ACTOR, make_site(), "Oak", [], ALWAYS.windows)
    with pytest.raises(RuleViolation):
        set_usual_group(db.session, TEST_ACTOR, site, elsewhere)
