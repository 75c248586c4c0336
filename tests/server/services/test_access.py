"""Principle 1, second half: access belongs to the person, so no face data means the same access."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gatehouse_core.schedule import ALWAYS, Window
from gatehouse_core.sealed import seal
from server.extensions import db
from server.models import ConsentChannel, ConsentRecord, FaceTemplate, PersonStatus, utcnow
from server.services.access import access
from server.services.errors import RuleViolation
from server.services.people import people
from tests.conftest import TEST_ACTOR


def _give_face(person, keys):
    consent = ConsentRecord(person=person, site_id=person.site_id, notice_sha256="0" * 64, channel=ConsentChannel.DESK)
    db.session.add(consent)
    db.session.flush()
    db.session.add(
        FaceTemplate(
            person=person,
            consent_id=consent.id,
            model_id="test-model",
            sealed_vector=seal(keys.template_key, b"\0" * 2048, f"template:{person.id}"),
        )
    )
    db.session.commit()


def test_person_without_face_has_exactly_the_same_access(make_site, make_door, make_person, keys):
    site = make_site()
    north = make_door(site, "North", face=True)
    east = make_door(site, "East")
    garage = make_door(site, "Garage")
    group = access.create_group(
        db.session, TEST_ACTOR, site, "Residents", [north, east], [Window(d, 6 * 60, 23 * 60) for d in range(7)]
    )
    with_face = make_person(site, "With Face")
    without_face = make_person(site, "Without Face")
    for person in (with_face, without_face):
        access.add_member(db.session, TEST_ACTOR, group, person)
    db.session.commit()
    _give_face(with_face, keys)
    assert with_face.face_templates and not without_face.face_templates

    assert access.allowed_doors(with_face) == access.allowed_doors(without_face) == {north.id, east.id}
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    for hour in range(0, 48, 3):
        at = start + timedelta(hours=hour, minutes=17)
        for door in (north, east, garage):
            a = access.may_enter(db.session, with_face, door, at)
            b = access.may_enter(db.session, without_face, door, at)
            assert a == b, (door.name, at)


def test_schedule_is_judged_in_site_local_time(make_site, make_door, make_person):
    site = make_site(timezone="Asia/Shanghai")
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "Morning", [door], [Window(0, 7 * 60, 9 * 60)])
    person = make_person(site)
    access.add_member(db.session, TEST_ACTOR, group, person)
    db.session.commit()
    # Monday 07:30 in Shanghai is Sunday 23:30 UTC.
    assert access.may_enter(db.session, person, door, datetime(2026, 11, 22, 23, 30, tzinfo=UTC)).allowed
    check = access.may_enter(db.session, person, door, datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
    assert (check.allowed, check.reason) == (False, "outside_schedule")


def test_holiday_closes_groups_that_are_closed_on_holidays(make_site, make_door, make_person):
    site = make_site(timezone="Asia/Shanghai")
    door = make_door(site)
    staff = access.create_group(db.session, TEST_ACTOR, site, "Staff", [door], ALWAYS.windows, open_on_holidays=False)
    person = make_person(site)
    access.add_member(db.session, TEST_ACTOR, staff, person)
    access.add_holiday(db.session, TEST_ACTOR, site, date(2027, 1, 1), "New Year")
    db.session.commit()
    # 2027-01-01 08:00 in Shanghai; the day before is an ordinary day.
    assert not access.may_enter(db.session, person, door, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)).allowed
    assert access.may_enter(db.session, person, door, datetime(2026, 12, 31, 0, 0, tzinfo=UTC)).allowed


def test_moved_out_person_is_refused_everywhere(make_site, make_door, make_person):
    site = make_site()
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "All", [door], ALWAYS.windows)
    person = make_person(site)
    access.add_member(db.session, TEST_ACTOR, group, person)
    people.move_out(db.session, TEST_ACTOR, person)
    db.session.commit()
    assert person.status is PersonStatus.MOVED_OUT
    check = access.may_enter(db.session, person, door, utcnow())
    assert (check.allowed, check.reason) == (False, "revoked")
    assert access.allowed_doors(person) == set()


def test_groups_and_doors_stay_within_their_site(make_site, make_door, make_person):
    a, b = make_site(), make_site()
    door_b = make_door(b)
    with pytest.raises(RuleViolation):
        access.create_group(db.session, TEST_ACTOR, a, "Mixed", [door_b], ALWAYS.windows)
    db.session.rollback()
    group_b = access.create_group(db.session, TEST_ACTOR, b, "B", [door_b], ALWAYS.windows)
    with pytest.raises(RuleViolation):
        access.add_member(db.session, TEST_ACTOR, group_b, make_person(a))
    db.session.rollback()
    person_a = make_person(a, "Other")
    assert access.may_enter(db.session, person_a, door_b, utcnow()).reason == "wrong_door"
