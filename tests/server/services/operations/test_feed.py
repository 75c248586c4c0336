"""The operations feed: every event stored once appears once, in order, filtered by site and topic (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.link import event_ingest as events
from server.models import Door, FeedKind, Site, utcnow
from server.services.operations import feed
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR


def _event(door: Door, decision: Decision, reason: str = "ok") -> EventRecord:
    return EventRecord(
        uid=str(uuid.uuid4()), door=door.id, person="p-0123456789abcdef", at=utcnow(),
        method=EntryMethod.CARD, decision=decision, reason=reason,
    )  # fmt: skip


def test_stored_events_appear_once_in_order_by_site_and_topic(
    make_site: Callable[..., Site], make_door: Callable[..., Door]
) -> None:
    north, south = make_site("north"), make_site("south")
    gate, back = make_door(north, "Gate"), make_door(south, "Back")
    tn = terminals.provision_terminal(db.session, TEST_ACTOR, north, "tn", [gate]).terminal
    ts = terminals.provision_terminal(db.session, TEST_ACTOR, south, "ts", [back]).terminal
    db.session.commit()
    start = feed.latest_id(db.session)
    granted, denied = _event(gate, Decision.GRANT), _event(gate, Decision.DENY, "unknown_card")
    elsewhere = _event(back, Decision.ALARM, "brute_force")
    batch = [(events.sender_of(db.session, tn), [granted, denied]), (events.sender_of(db.session, ts), [elsewhere])]
    events.ingest(db.session, batch)
    events.ingest(db.session, batch)  # redelivered: stored once, so fed once
    db.session.commit()

    # The keypad alarm also raises an alarm (its own feed item, alarm.raised): here, the access events.
    items = feed.items_after(db.session, start, topics=feed.ACCESS_TOPICS)
    assert [feed.payload(i)["uid"] for i in items] == [granted.uid, denied.uid, elsewhere.uid]
    assert [i.topic for i in items] == ["access.granted", "access.denied", "access.alarm"]
    assert all(i.kind is FeedKind.EVENT for i in items) and items[0].id < items[1].id < items[2].id
    first = feed.payload(items[0])
    assert first["person"] == "p-0123456789abcdef" and first["door_id"] == gate.id and first["method"] == "card"
    assert set(first) == {
        "id", "uid", "occurred_at", "site_id", "door_id", "terminal_id", "method", "decision", "reason", "person",
    }  # fmt: skip

    assert {i.site_id for i in feed.items_after(db.session, start, site_ids=[south.id])} == {south.id}
    assert [i.topic for i in feed.items_after(db.session, start, topics=["access.denied"])] == ["access.denied"]
    assert [i.id for i in feed.items_after(db.session, items[0].id, limit=1)] == [items[1].id]
    assert feed.latest_id(db.session) >= items[-1].id

    assert feed.prune(db.session, utcnow() + timedelta(seconds=1)) == 4  # three events and the alarm
    db.session.commit()
    assert feed.items_after(db.session, start) == []
