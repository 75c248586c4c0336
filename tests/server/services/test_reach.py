"""'Can this person get in?': doors, groups and schedules as terminals decide them, and the reasons when none."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gatehouse_core.schedule import ALWAYS, Window
from server.extensions import db
from server.models import PersonStatus
from server.services.access import access, reach
from server.services.access.reach import Blocker, Method, ScheduleLine
from server.services.people import credentials
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR

CARD = "04A2B3C4D5E6F7"
# A Wednesday, 10:00 in Shanghai (UTC+8), and the same day at 23:00 there.
WEDNESDAY_10 = datetime(2025, 3, 12, 2, 0, tzinfo=UTC)
WEDNESDAY_23 = datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
WEEKDAYS_7_TO_22 = [Window(d, 7 * 60, 22 * 60) for d in range(5)]


@pytest.fixture
def resident(make_site, make_door, make_person, keys):
    """A resident with a card in 'Residents' (weekdays 07:00-22:00) over a door a terminal serves."""
    site = make_site()
    door = make_door(site, "North gate")
    terminals.provision_terminal(db.session, TEST_ACTOR, site, "North terminal", [door])
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], WEEKDAYS_7_TO_22)
    person = make_person(site, "Zhang Min")
    access.add_member(db.session, TEST_ACTOR, group, person)
    credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)
    db.session.commit()
    return person


def test_doors_open_now_through_their_group_and_schedule(resident):
    answer = reach.doors_for(db.session, resident, WEDNESDAY_10)
    [door] = answer.open_now
    assert door.door.name == "North gate" and door.methods == (Method.CARD,)
    [group] = door.groups
    assert group.group.name == "Residents" and group.open_now
    assert group.lines == (ScheduleLine(0, 4, ((420, 1320),)),)
    assert answer.blockers == ()


def test_outside_the_schedule_is_the_reason(resident):
    answer = reach.doors_for(db.session, resident, WEDNESDAY_23)
    assert answer.open_now == () and answer.blockers == (Blocker.OUTSIDE_SCHEDULE,)
    # The same answer the terminals' rule gives for that door and moment.
    door = answer.doors[0].door
    assert access.may_enter(db.session, resident, door, WEDNESDAY_23).reason == "outside_schedule"


def test_a_holiday_closes_groups_that_are_closed_on_holidays(resident):
    group = resident.access_groups[0]
    group.open_on_holidays = False
    access.add_holiday(db.session, TEST_ACTOR, resident.site, date(2025, 3, 12), "Spring day")
    db.session.commit()
    answer = reach.doors_for(db.session, resident, WEDNESDAY_10)
    assert answer.holiday_today and answer.blockers == (Blocker.HOLIDAY,)


@pytest.mark.parametrize(
    ("status", "blocker"), [(PersonStatus.SUSPENDED, Blocker.SUSPENDED), (PersonStatus.MOVED_OUT, Blocker.MOVED_OUT)]
)
def test_a_person_who_may_not_enter_at_all_says_so(resident, status, blocker):
    resident.status = status
    db.session.commit()
    answer = reach.doors_for(db.session, resident, WEDNESDAY_10)
    assert answer.open_now == () and answer.blockers[0] is blocker


def test_no_groups_and_no_credential(make_site, make_person):
    person = make_person(make_site(), "Li Wei")
    answer = reach.doors_for(db.session, person, WEDNESDAY_10)
    assert answer.doors == () and answer.blockers == (Blocker.NO_GROUPS, Blocker.NO_CREDENTIAL)


def test_groups_without_doors(make_site, make_person, keys):
    site = make_site()
    person = make_person(site, "Li Wei")
    empty = access.create_group(db.session, TEST_ACTOR, site, "Gym", [], ALWAYS.windows)
    access.add_member(db.session, TEST_ACTOR, empty, person)
    credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)
    db.session.commit()
    assert reach.doors_for(db.session, person, WEDNESDAY_10).blockers == (Blocker.NO_DOORS,)


def test_a_revoked_card_leaves_no_credential(resident):
    for card in resident.credentials:
        credentials.revoke(db.session, TEST_ACTOR, card)
    db.session.commit()
    answer = reach.doors_for(db.session, resident, WEDNESDAY_10)
    assert answer.open_now == () and answer.blockers == (Blocker.NO_CREDENTIAL,)


def test_a_door_that_takes_none_of_their_methods(make_site, make_door, make_person, keys):
    site = make_site()
    door = make_door(site, "Garage", card=False)
    terminals.provision_terminal(db.session, TEST_ACTOR, site, "Garage terminal", [door])
    group = access.create_group(db.session, TEST_ACTOR, site, "Parking", [door], ALWAYS.windows)
    person = make_person(site, "Li Wei")
    access.add_member(db.session, TEST_ACTOR, group, person)
    credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)
    db.session.commit()
    assert reach.doors_for(db.session, person, WEDNESDAY_10).blockers == (Blocker.NO_ACCEPTED_METHOD,)


def test_a_door_no_terminal_serves(make_site, make_door, make_person, keys):
    site = make_site()
    door = make_door(site, "Back gate")
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], ALWAYS.windows)
    person = make_person(site, "Li Wei")
    access.add_member(db.session, TEST_ACTOR, group, person)
    credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)
    db.session.commit()
    answer = reach.doors_for(db.session, person, WEDNESDAY_10)
    assert answer.doors[0].allowed_now and answer.blockers == (Blocker.NO_TERMINAL,)


@pytest.mark.parametrize(
    ("windows", "lines"),
    [
        (ALWAYS.windows, (ScheduleLine(0, 6, ((0, 1440),)),)),
        ((), ()),
        (
            [*WEEKDAYS_7_TO_22, Window(5, 9 * 60, 12 * 60), Window(5, 14 * 60, 18 * 60)],
            (ScheduleLine(0, 4, ((420, 1320),)), ScheduleLine(5, 5, ((540, 720), (840, 1080)))),
        ),
        (
            [Window(0, 60, 120), Window(2, 60, 120)],
            (ScheduleLine(0, 0, ((60, 120),)), ScheduleLine(2, 2, ((60, 120),))),
        ),
    ],
)
def test_schedule_lines_join_days_with_the_same_hours(windows, lines):
    assert reach.schedule_lines(windows) == lines


def test_outside_the_hours_says_when_they_next_begin(resident):
    answer = reach.doors_for(db.session, resident, WEDNESDAY_23)
    # Thursday 07:00 in Shanghai.
    assert answer.next_open == datetime(2025, 3, 12, 23, 0, tzinfo=UTC)
    assert reach.doors_for(db.session, resident, WEDNESDAY_10).next_open is None


def test_the_next_opening_skips_a_holiday_when_the_group_is_closed_on_holidays(resident):
    group = resident.access_groups[0]
    group.open_on_holidays = False
    access.add_holiday(db.session, TEST_ACTOR, resident.site, date(2025, 3, 13), "Spring day")
    db.session.commit()
    answer = reach.doors_for(db.session, resident, WEDNESDAY_23)
    # Thursday is a holiday: Friday 07:00 in Shanghai.
    assert answer.next_open == datetime(2025, 3, 13, 23, 0, tzinfo=UTC)
