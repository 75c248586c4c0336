"""Door activity for the dashboard: site days, per-day counts, refusals, busiest doors, face fallback, the cache."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from gatehouse_core.sealed import seal
from gatehouse_core.wire.messages import Decision, EntryMethod
from server.extensions import db
from server.models import ConsentChannel, ConsentRecord, FaceTemplate, utcnow
from server.services.access import sites
from server.services.reports import activity
from server.services.reports import dashboard as service
from server.services.reports.activity import ReportCache
from tests.conftest import TEST_ACTOR
from tests.server.console.test_events import add_events, make_site


def give_face(person, keys):
    """Record a desk consent and a face template for `person`."""
    consent = ConsentRecord(person=person, site_id=person.site_id, notice_sha256="0" * 64, channel=ConsentChannel.DESK)
    db.session.add(consent)
    db.session.flush()
    template = FaceTemplate(
        person=person,
        consent_id=consent.id,
        model_id="test-model",
        sealed_vector=seal(keys.template_key, b"\0" * 2048, f"template:{person.id}"),
    )
    db.session.add(template)
    db.session.commit()
    return consent


def test_site_days_are_the_sites_calendar_days_across_a_dst_change():
    at = datetime(2025, 3, 10, 12, tzinfo=UTC)  # Los Angeles moved to summer time on 9 March
    days = activity.site_days(1, "America/Los_Angeles", at, count=3)
    assert [d.day for d in days] == [date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 10)]
    assert days[0].start == datetime(2025, 3, 8, 8, tzinfo=UTC)
    assert days[1].end - days[1].start == timedelta(hours=23)  # the short day
    assert days[2].start == datetime(2025, 3, 10, 7, tzinfo=UTC)
    assert all(a.end == b.start for a, b in itertools.pairwise(days))


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
    today = activity.site_days(site.id, site.timezone, at, 1)[0]
    three_ago = today.start - timedelta(days=3)
    add_events(
        {"site": site, "door": gate, "at": today.start + timedelta(minutes=1)},
        {"site": site, "door": gate, "method": EntryMethod.FACE, "at": today.start + timedelta(minutes=2)},
        {"site": site, "door": shed, "at": three_ago + timedelta(hours=1)},
        {"site": site, "door": shed, "method": EntryMethod.APP_CODE, "at": three_ago + timedelta(hours=2)},
        {"site": site, "door": gate, "decision": Decision.DENY, "reason": "outside_schedule", "at": three_ago},
        {"site": site, "door": gate, "decision": Decision.DENY, "reason": "unknown", "at": today.start},
        {
            "site": site,
            "door": gate,
            "method": EntryMethod.FACE,
            "decision": Decision.DENY,
            "reason": "unknown",
            "at": today.start + timedelta(seconds=5),
        },
        # Alarms are neither entries nor refusals; before the window, nothing counts.
        {"site": site, "door": gate, "decision": Decision.ALARM, "reason": "brute_force", "at": today.start},
        {"site": site, "door": gate, "at": today.start - timedelta(days=activity.WINDOW_DAYS)},
    )
    found = activity.activity(db.session, at)
    assert len(found.days) == activity.WINDOW_DAYS and found.last_day == today.day
    by_day = dict(found.days)
    assert by_day[today.day].entries == {EntryMethod.CARD: 1, EntryMethod.FACE: 1}
    assert by_day[today.day - timedelta(days=3)].entries == {EntryMethod.CARD: 1, EntryMethod.APP_CODE: 1}
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
    start = activity.site_days(site.id, site.timezone, utcnow(), 1)[0].start
    add_events(
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


def test_the_cache_keeps_closed_days_and_recounts_one_a_late_event_falls_on(yard):
    site, gate, _shed = yard
    at = utcnow()
    days = activity.site_days(site.id, site.timezone, at, activity.WINDOW_DAYS, face_doors=(gate.id,))
    yesterday, week_ago = days[-2], days[-8]
    add_events({"site": site, "door": gate, "at": yesterday.start}, {"site": site, "door": gate, "at": week_ago.start})
    cache = ReportCache()
    first = activity.activity(db.session, at, cache)
    assert cache.get(yesterday) is not None and cache.get(days[-1]) is None  # today is never kept
    assert first.window.entries[EntryMethod.CARD] == 2
    # A terminal that was offline delivers an event of yesterday: that day alone is counted again.
    kept_week_ago = cache.get(week_ago)
    add_events({"site": site, "door": gate, "at": yesterday.start + timedelta(hours=1)})
    second = activity.activity(db.session, at, cache)
    assert dict(second.days)[yesterday.day].entries[EntryMethod.CARD] == 2
    assert cache.get(week_ago) is kept_week_ago
    # Today's events never touch the kept days, and are counted on every call.
    add_events({"site": site, "door": gate, "at": at - timedelta(seconds=1)})
    third = activity.activity(db.session, at, cache)
    assert cache.get(week_ago) is kept_week_ago and third.today.entries[EntryMethod.CARD] == 1
    # After the cache's time to live every day is counted again (a deletion shows then).
    later = activity.activity(db.session, at + cache.ttl + timedelta(seconds=1), cache)
    assert cache.get(week_ago) is not kept_week_ago and later.window.entries[EntryMethod.CARD] >= 3


def test_people_figures_are_kept_for_a_minute(yard, make_person):
    site, _gate, _shed = yard
    cache = ReportCache()
    at = utcnow()
    assert service.dashboard(db.session, at, cache).people == 0
    make_person(site, "New Resident")
    assert service.dashboard(db.session, at + timedelta(seconds=30), cache).people == 0
    assert service.dashboard(db.session, at + cache.people_ttl + timedelta(seconds=1), cache).people == 1
    assert service.dashboard(db.session, at).people == 1  # without a cache, always counted
