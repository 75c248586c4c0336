"""The daily event counts: kept by the event write path, equal to a GROUP BY over the events, recounted alike."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from gatehouse_core.sealed import seal
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.link import event_ingest
from server.models import AccessEvent, ConsentChannel, ConsentRecord, EventDayCount, FaceTemplate, Person, Site
from server.services.access import sites
from server.services.reports import day_counts
from tests.conftest import TEST_ACTOR
from tests.server.console.test_events import make_site, make_terminal


def record_events(*events: dict[str, Any]) -> None:
    """Store access events and count them as the event write path does; dicts as test_events.add_events takes."""
    rows = [
        {
            "event_uid": str(uuid.uuid4()),
            "site_id": e["site"].id,
            "terminal_id": e["terminal"].id if e.get("terminal") else None,
            "door_id": e["door"].id if e.get("door") else None,
            "person_pseudonym": e.get("pseudonym"),
            "pass_id": e.get("pass_id"),
            "method": e.get("method", EntryMethod.CARD),
            "decision": e.get("decision", Decision.GRANT),
            "reason": e.get("reason", "granted"),
            "occurred_at": e["at"],
            "received_at": e["at"],
        }
        for e in events
    ]
    stored = db.session.execute(insert(AccessEvent).returning(*day_counts._FACTS), rows).all()
    day_counts.count_events(db.session, stored)
    db.session.commit()


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


def rollup() -> Counter[tuple[Any, ...]]:
    """The stored daily counts, by their key."""
    found: Counter[tuple[Any, ...]] = Counter()
    for row in db.session.scalars(select(EventDayCount)):
        key = (row.site_id, row.decision, row.day, row.method, row.door_id, row.reason, row.enrolled)
        assert key not in found  # one row per key
        found[key] = row.count
    return found


def grouped(enrolled: set[str]) -> Counter[tuple[Any, ...]]:
    """A GROUP BY over the stored events, each on its site's local date (zoneinfo, independently of the service)."""
    zones = {site.id: ZoneInfo(site.timezone) for site in db.session.scalars(select(Site))}
    found: Counter[tuple[Any, ...]] = Counter()
    for e in db.session.scalars(select(AccessEvent)):
        let_in = e.decision is Decision.GRANT and e.person_pseudonym in enrolled
        day = e.occurred_at.astimezone(zones[e.site_id]).date()
        door = (e.door_id or 0) if e.decision is Decision.GRANT else 0  # refusals and alarms per site
        found[(e.site_id, e.decision, day, e.method, door, e.reason, let_in)] += 1
    return found


def record(door, at, *, uid=None, method=EntryMethod.CARD, decision=Decision.GRANT, reason="granted", person=None):
    """An event as a terminal reports it."""
    return EventRecord(
        uid=uid or str(uuid.uuid4()),
        door=door.id,
        method=method,
        decision=decision,
        reason=reason,
        at=at,
        person=person,
    )


def test_the_rollup_is_a_group_by_over_the_events_ingested_exactly_once(app, make_person, keys):
    # New York changed to summer time on 9 March 2025 (02:00 -> 03:00) and back on 2 November (02:00 -> 01:00).
    york = make_site("york", "York Court", timezone="America/New_York")
    east = make_site("east", "East Garden", timezone="Asia/Shanghai")
    south = make_site("south", "South Yard", timezone="UTC")
    york_gate = sites.save_door(db.session, TEST_ACTOR, york, "Gate", sites.DoorMethods(face=True))
    york_shed = sites.save_door(db.session, TEST_ACTOR, york, "Shed", sites.DoorMethods())
    east_gate = sites.save_door(db.session, TEST_ACTOR, east, "Gate", sites.DoorMethods())
    south_gate = sites.save_door(db.session, TEST_ACTOR, south, "Gate", sites.DoorMethods())
    york_t = make_terminal(york, "York terminal", [york_gate, york_shed])
    east_t = make_terminal(east, "East terminal", [east_gate])
    south_t = make_terminal(south, "South terminal", [south_gate])
    db.session.commit()
    with_face, without = make_person(york, "Has Face"), make_person(york, "No Face")
    give_face(with_face, keys)
    spring, autumn = datetime(2025, 3, 9, 7, 30, tzinfo=UTC), datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    repeated = str(uuid.uuid4())
    york_events = [
        record(york_gate, spring - timedelta(hours=3), person=with_face.pseudonym),  # 23:30 on the 8th (EST)
        record(york_gate, spring, method=EntryMethod.FACE, person=with_face.pseudonym),  # 03:30 on the 9th (EDT)
        record(york_gate, spring + timedelta(hours=20, minutes=29), person=without.pseudonym),  # 23:59 (EDT)
        record(york_shed, autumn, uid=repeated),  # 01:30 EDT on 2 November
        record(york_shed, autumn + timedelta(hours=1)),  # 01:30 again, now EST: the same day
        record(york_shed, autumn + timedelta(hours=23)),  # 23:30 EST on the 2nd
        record(york_shed, autumn + timedelta(hours=23, minutes=31)),  # 00:01 on the 3rd
        record(york_gate, autumn, decision=Decision.DENY, reason="unknown"),
        record(york_gate, autumn, method=EntryMethod.FACE, decision=Decision.DENY, reason="unknown"),
        record(york_gate, autumn, uid=repeated),  # the same uid again in the same batch: stored once
    ]
    batches = [
        (event_ingest.sender_of(db.session, york_t), york_events),
        (
            event_ingest.sender_of(db.session, east_t),
            [
                record(east_gate, datetime(2025, 3, 9, 15, 59, tzinfo=UTC)),  # 23:59 in Shanghai
                record(east_gate, datetime(2025, 3, 9, 16, 0, tzinfo=UTC)),  # midnight: the 10th
                record(york_gate, datetime(2025, 3, 9, 16, 0, tzinfo=UTC)),  # not a door it serves: refused
                record(east_gate, spring, decision=Decision.ALARM, reason="brute_force"),
            ],
        ),
        (event_ingest.sender_of(db.session, south_t), [record(south_gate, spring)]),
    ]
    result = event_ingest.ingest(db.session, batches)
    db.session.commit()
    assert len(result.rejected) == 1
    # A terminal that did not hear the acknowledgement sends the batch again: nothing is counted twice.
    event_ingest.ingest(db.session, batches)
    db.session.commit()

    assert db.session.scalar(select(db.func.count()).select_from(AccessEvent)) == 13
    expected = grouped({with_face.pseudonym})
    assert rollup() == expected
    assert sum(expected.values()) == 13
    # Both 01:30s of 2 November and 23:30 are that day in New York (with the two refusals); 00:01 is the 3rd.
    york_on = Counter()
    for key, n in expected.items():
        if key[0] == york.id:
            york_on[key[2]] += n
    assert york_on[date(2025, 11, 2)] == 5 and york_on[date(2025, 11, 3)] == 1
    assert york_on[date(2025, 3, 8)] == 1 and york_on[date(2025, 3, 9)] == 2
    card, enrolled = EntryMethod.CARD, (york.id, Decision.GRANT, date(2025, 3, 8), EntryMethod.CARD)
    assert expected[(*enrolled, york_gate.id, "granted", True)] == 1  # by someone with a face enrolled
    assert expected[(york.id, Decision.GRANT, date(2025, 3, 9), card, york_gate.id, "granted", False)] == 1

    # Counting every stored event again gives the same rows.
    day_counts.recount(db.session)
    db.session.commit()
    assert rollup() == expected


def test_local_day_follows_daylight_saving():
    # 04:30 UTC is 23:30 the day before in New York in winter (UTC-5), 00:30 the same day in summer (UTC-4).
    assert day_counts.local_day("America/New_York", datetime(2025, 1, 15, 4, 30, tzinfo=UTC)).day == 14
    assert day_counts.local_day("America/New_York", datetime(2025, 7, 15, 4, 30, tzinfo=UTC)).day == 15
    assert day_counts.local_day("Asia/Shanghai", datetime(2025, 7, 15, 16, 0, tzinfo=UTC)).day == 16


def test_nothing_personal_is_kept():
    columns = set(EventDayCount.__table__.columns.keys())
    assert columns == {"id", "site_id", "day", "door_id", "method", "decision", "reason", "enrolled", "count"}
    assert not columns & set(Person.__table__.columns.keys()) - {"id", "site_id"}
