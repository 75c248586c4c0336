"""Registering a person with groups and a first card in one step: all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AuditEntry, Credential, JournalEntry, Person
from server.services.access import access
from server.services.errors import DomainError
from server.services.people import credentials
from server.services.people.registration import register_person
from tests.conftest import TEST_ACTOR

CARD = "04A2B3C4D5E6F7"


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Person, Credential, JournalEntry))


def test_details_groups_and_card_in_one_step(make_site, keys):
    site = make_site()
    residents = access.create_group(db.session, TEST_ACTOR, site, "Residents", [], ALWAYS.windows)
    person = register_person(
        db.session, TEST_ACTOR, keys, site, full_name=" Zhang Min ", groups=[residents], card_uid=f" {CARD} "
    )
    db.session.commit()
    assert person.full_name == "Zhang Min" and person.access_groups == [residents]
    [card] = person.credentials
    assert card.kind.value == "card"
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"person.create", "group.add_member", "credential.add"} <= actions


def test_without_groups_or_card(make_site, keys):
    person = register_person(db.session, TEST_ACTOR, keys, make_site(), full_name="Li Wei", card_uid="  ")
    assert person.credentials == [] and person.access_groups == []


@pytest.mark.parametrize("uid", ["not a card", "04A2B3", "taken"])
def test_a_bad_card_creates_nothing(make_site, make_person, keys, uid):
    site = make_site()
    residents = access.create_group(db.session, TEST_ACTOR, site, "Residents", [], ALWAYS.windows)
    if uid == "taken":
        credentials.add_card(db.session, TEST_ACTOR, keys, make_person(site, "Wang Fang"), CARD)
        uid = CARD
    db.session.commit()
    before = counts()
    with pytest.raises(DomainError) as refused:
        register_person(db.session, TEST_ACTOR, keys, site, full_name="Li Wei", groups=[residents], card_uid=uid)
    assert refused.value.code in ("bad_card", "credential_taken")
    assert counts() == before


def test_a_group_of_another_site_creates_nothing(make_site, keys):
    site = make_site()
    foreign = access.create_group(db.session, TEST_ACTOR, make_site(), "Oak", [], ALWAYS.windows)
    db.session.commit()
    before = counts()
    with pytest.raises(DomainError) as refused:
        register_person(db.session, TEST_ACTOR, keys, site, full_name="Li Wei", groups=[foreign])
    assert refused.value.code == "foreign_group" and counts() == before


def test_bad_details_create_nothing(make_site, keys):
    site = make_site()
    before = counts()
    with pytest.raises(DomainError) as refused:
        register_person(db.session, TEST_ACTOR, keys, site, full_name="  ", card_uid=CARD)
    assert refused.value.code == "name_missing" and counts() == before
