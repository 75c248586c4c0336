"""Door activity for the dashboard: per-day counts, refusals, busiest doors, face fallback, people counts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.extensions import db
from server.models import utcnow
from server.services.access import sites
from server.services.reports import activity
from server.services.reports import dashboard as service
from server.services.reports.activity import ReportCache
from server.services.reports.day_counts import recount
from tests.conftest import TEST_ACTOR
from tests.server.console.test_events import make_site
from tests.server.services.test_day_counts import give_face, record_events


def site_start(site, at):
    """The UTC start of the site's calendar day containing `at`."""
    zone = ZoneInfo(site.timezone)
    return datetime.combine(at.astimezone(zone).date(), time(), tzinfo=zone).astimezone(UTC)


@pytest.fixture
def yard(app):
    """A face site with a face door and a card-only door."""
    site = make_site("yard", "Yard", timezone="Asia/Shanghai")
    site.face_enabled = True
    gate = sites.save_door(db.session, TEST_ACTOR, site, "Gate", sites.DoorMethods(face=True))
    shed = sites.save_door(db.session, TEST_ACTOR, site, "Shed", sites.DoorMethods())
    db.session.commit()
    return site, gate, shed


def test_days_methods_refusals_and_doors(yard):
    site, gate, shed = yard
    at = utcnow()
    start = site_start(site, at)
    three_ago = start - timedelta(days=3)
    record_events(
        {"site": site, "door": gate, "at": start + timedelta(minutes=1)},
        {"site": site, "door": gate, "method": EntryMethod.FACE, "at": start + timedelta(minutes=2)},
        {"site": site, "door": shed, "at": three_ago + timedelta(hours=1)},
        {"site": site, "door": shed, "method": EntryMethod.APP_CODE, "at": three_ago + timedelta(hours=2)},
        {"site": site, "door": gate, "decision": Decision.DENY, "reason": "outside_schedule", "at": three_ago},
        {"site": site, "door": gate, "decision": Decision.DENY, "reason": "unknown", "at": start},
        {
            "site": site,
            "door": gate,
            "method": EntryMethod.FACE,
            "decision": Decision.DENY,
            "reason": "unknown",
            "at": start + timedelta(seconds=5),
        },
        # Alarms are neither entries nor refusals; before the window, nothing counts.
        {"site": site, "door": gate, "decision": Decision.ALARM, "reason": "brute_force", "at": start},
        {"site": site, "door": gate, "at": start - timedelta(days=activity.WINDOW_DAYS)},
    )
    found = activity.activity(db.session, at)
    today = start.astimezone(ZoneInfo(site.timezone)).date()
    assert len(found.days) == activity.WINDOW_DAYS and found.last_day == today
    by_day = dict(found.days)
    assert by_day[today].entries == {EntryMethod.CARD: 1, EntryMethod.FACE: 1}
    assert by_day[today - timedelta(days=3)].entries == {EntryMethod.CARD: 1, EntryMethod.APP_CODE: 1}
    assert found.today.refusals == {"unknown": 2} and found.today.face_refusals == 1
    assert found.window.refusals == {"unknown": 2, "outside_schedule": 1}
    assert found.window.doors == {gate.id: 2, shed.id: 2} and found.today.doors == {gate.id: 2}
    assert activity.methods_seen(f for _, f in found.days) == [EntryMethod.FACE, EntryMethod.CARD, EntryMethod.APP_CODE]
    busiest = service.busiest_doors(db.session, found)
    assert [(d.name, d.today, d.window) for d in busiest] == [("Gate", 2, 2), ("Shed", 0, 2)]


def test_fallback_counts_entries_at_face_doors_by_people_with_a_face(yard, make_person, keys):
    site, gate, shed = yard
    with_face = make_person(site, "Has Face")
    without = make_person(site, "No Face")
    withdrawn = make_person(site, "Withdrew")
    give_face(with_face, keys)
    give_face(withdrawn, keys).withdrawn_at = utcnow() - timedelta(days=1)
    db.session.commit()
    start = site_start(site, utcnow())
    record_events(
        {"site": site, "door": gate, "pseudonym": with_face.pseudonym, "method": EntryMethod.FACE, "at": start},
        {"site": site, "door": gate, "pseudonym": with_face.pseudonym, "at": start},  # a fallback
        {"site": site, "door": shed, "pseudonym": with_face.pseudonym, "at": start},  # no face at this door
        {"site": site, "door": gate, "pseudonym": without.pseudonym, "at": start},
        {"site": site, "door": gate, "pseudonym": withdrawn.pseudonym, "at": start},
        {"site": site, "door": gate, "pseudonym": with_face.pseudonym, "decision": Decision.DENY, "at": start},
    )
    found = activity.activity(db.session)
    assert found.today.enrolled == {EntryMethod.FACE: 1, EntryMethod.CARD: 1}
    assert found.window.enrolled == found.today.enrolled
    face = service.face_use(db.session)
    assert (face.face_sites, face.people, face.enrolled) == (1, 3, 1)
    assert face.rate == pytest.approx(1 / 3)
    # With face entry off at the site, nobody falls back from it.
    site.face_enabled = False
    db.session.commit()
    assert activity.activity(db.session).today.enrolled == {}
    assert service.face_use(db.session).face_sites == 0


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_a_late_event_and_an_event_at_a_days_edge_land_on_their_own_days(yard, cached):
    site, gate, _shed = yard
    at = utcnow()
    start = site_start(site, at)
    cache = ReportCache() if cached else None
    record_events({"site": site, "door": gate, "at": start - timedelta(days=1)})
    first = activity.activity(db.session, at, cache=cache)
    assert activity.activity(db.session, at, cache=cache) == first  # the past days as kept
    # A terminal that was offline delivers an event of yesterday, and one of the last second of the day before.
    record_events(
        {"site": site, "door": gate, "at": start - timedelta(hours=1)},
        {"site": site, "door": gate, "at": start - timedelta(days=1, seconds=1)},
    )
    again = activity.activity(db.session, at, cache=cache)
    yesterday = first.last_day - timedelta(days=1)
    assert dict(first.days)[yesterday].entries[EntryMethod.CARD] == 1
    assert dict(again.days)[yesterday].entries[EntryMethod.CARD] == 2
    assert dict(again.days)[yesterday - timedelta(days=1)].entries[EntryMethod.CARD] == 1
    assert again.today.entries == {}


def test_a_fallback_is_judged_by_the_face_enrolled_when_the_event_was_stored(yard, make_person, keys):
    site, gate, _shed = yard
    person = make_person(site, "Has Face")
    consent = give_face(person, keys)
    record_events({"site": site, "door": gate, "pseudonym": person.pseudonym, "at": site_start(site, utcnow())})
    consent.withdrawn_at = utcnow()
    db.session.commit()
    assert activity.activity(db.session).today.enrolled == {EntryMethod.CARD: 1}
    # Counting every event again (the migration) judges by the faces enrolled then.
    recount(db.session)
    db.session.commit()
    assert activity.activity(db.session).today.enrolled == {}


def test_kept_past_days_match_a_fresh_read_and_move_with_the_day(yard):
    site, gate, shed = yard
    at = utcnow()
    start = site_start(site, at)
    record_events(
        {"site": site, "door": gate, "at": start - timedelta(days=2)},
        {"site": site, "door": shed, "method": EntryMethod.APP_CODE, "at": start - timedelta(days=1)},
        {"site": site, "door": gate, "decision": Decision.DENY, "reason": "unknown", "at": start - timedelta(days=1)},
        {"site": site, "door": gate, "at": start + timedelta(minutes=1)},
    )
    cache = ReportCache()
    assert activity.activity(db.session, at, cache=cache) == activity.activity(db.session, at)
    record_events({"site": site, "door": shed, "at": start + timedelta(minutes=2)})  # today's: always read
    assert activity.activity(db.session, at, cache=cache).today.doors == {gate.id: 1, shed.id: 1}
    tomorrow = at + timedelta(days=1)
    kept = activity.activity(db.session, tomorrow, cache=cache)
    assert kept == activity.activity(db.session, tomorrow) and kept.today.entries == {}
    assert kept.window.doors == {gate.id: 2, shed.id: 2}


def test_people_figures_are_kept_for_a_minute(yard, make_person):
    site, _gate, _shed = yard
    cache = ReportCache()
    at = utcnow()
    assert service.dashboard(db.session, at, cache).people == 0
    make_person(site, "New Resident")
    assert service.dashboard(db.session, at + timedelta(seconds=30), cache).people == 0
    assert service.dashboard(db.session, at + cache.people_ttl + timedelta(seconds=1), cache).people == 1
    assert service.dashboard(db.session, at).people == 1  # without a cache, always counted
