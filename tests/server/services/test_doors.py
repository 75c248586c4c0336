"""Principle 1: a door that accepts face also accepts card, ID document and app code."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from server.extensions import db
from server.models import Door, JournalEntry, JournalKind
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.errors import RuleViolation
from tests.conftest import TEST_ACTOR


@pytest.mark.parametrize(
    ("methods", "missing"),
    [
        (DoorMethods(face=True, card=False), "key card"),
        (DoorMethods(face=True, id_document=False), "ID document"),
        (DoorMethods(face=True, app_code=False), "app code"),
        (DoorMethods(face=True, card=False, id_document=False, app_code=False), "key card, ID document, app code"),
    ],
)
def test_face_door_without_every_alternative_is_refused(make_site, methods, missing):
    site = make_site()
    with pytest.raises(RuleViolation) as err:
        sites.save_door(db.session, TEST_ACTOR, site, "North gate", methods)
    assert err.value.code == "face_needs_alternatives"
    assert missing in err.value.message
    db.session.rollback()
    assert db.session.query(Door).count() == 0


def test_refused_update_changes_nothing(make_site, make_door):
    site = make_site()
    door = make_door(site, "North gate", face=True)
    seq_before = db.session.query(JournalEntry).count()
    with pytest.raises(RuleViolation):
        sites.save_door(db.session, TEST_ACTOR, site, "North gate", DoorMethods(face=True, app_code=False), door)
    db.session.rollback()
    door = db.session.get(Door, door.id)
    assert (door.accepts_face, door.accepts_card, door.accepts_id_document, door.accepts_app_code) == (
        True,
        True,
        True,
        True,
    )
    assert db.session.query(JournalEntry).count() == seq_before


@pytest.mark.parametrize(
    "methods",
    [DoorMethods(face=True), DoorMethods(), DoorMethods(card=True, id_document=False, app_code=False)],
)
def test_allowed_policies_are_saved_and_journalled(make_site, methods):
    site = make_site()
    door = sites.save_door(db.session, TEST_ACTOR, site, "Gate", methods)
    db.session.commit()
    entry = db.session.query(JournalEntry).filter_by(kind=JournalKind.DOOR_POLICY).one()
    assert entry.payload == {
        "door": door.id,
        "face": methods.face,
        "card": methods.card,
        "id_document": methods.id_document,
        "app_code": methods.app_code,
    }


def test_door_needs_some_method(make_site):
    site = make_site()
    with pytest.raises(RuleViolation) as err:
        sites.save_door(
            db.session, TEST_ACTOR, site, "Gate", DoorMethods(card=False, id_document=False, app_code=False)
        )
    assert err.value.code == "no_entry_method"


def test_database_refuses_face_only_door_even_without_the_service(make_site):
    site = make_site()
    with pytest.raises(IntegrityError):
        db.session.execute(
            insert(Door).values(
                site_id=site.id,
                name="Sneaky",
                accepts_face=True,
                accepts_card=False,
                accepts_id_document=True,
                accepts_app_code=True,
            )
        )
        db.session.flush()
    db.session.rollback()
