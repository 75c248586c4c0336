"""A site with two doors, each served by its own terminal, for the alarm and door-state tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.link import event_ingest as events
from server.models import AuditEntry, Door, FeedItem, Site, Terminal, utcnow
from server.services.operations import feed
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR


@dataclass
class Doors:
    """Gate (served by terminal North) and Back (served by terminal South) at one site."""

    site: Site
    gate: Door
    back: Door
    north: Terminal
    south: Terminal


@pytest.fixture
def doors(make_site: Callable[..., Site], make_door: Callable[..., Door]) -> Doors:
    site = make_site("oak")
    gate, back = make_door(site, "Gate"), make_door(site, "Back")
    north = terminals.provision_terminal(db.session, TEST_ACTOR, site, "North", [gate]).terminal
    south = terminals.provision_terminal(db.session, TEST_ACTOR, site, "South", [back]).terminal
    db.session.commit()
    return Doors(site, gate, back, north, south)


def alarm_event(door: Door, reason: str, at: datetime | None = None) -> EventRecord:
    """An alarm a terminal raises as an event (terminals/supervision.py, terminals/runtime.py)."""
    return EventRecord(
        uid=str(uuid.uuid4()),
        door=door.id,
        method=EntryMethod.REMOTE,
        decision=Decision.ALARM,
        reason=reason,
        at=at or utcnow(),
    )


def deliver(terminal: Terminal, *records: EventRecord) -> None:
    """Store events as the worker does, and commit."""
    events.ingest(db.session, [(events.sender_of(db.session, terminal), list(records))])
    db.session.commit()


def feed_topics(after: int = 0) -> list[tuple[str, int]]:
    """The alarm and door feed items after `after`: (topic, ref_id)."""
    items = feed.items_after(db.session, after, topics=feed.ALARM_TOPICS + feed.DOOR_TOPICS)
    return [(item.topic, item.ref_id) for item in items]


def audit_actions() -> list[tuple[str, str | None]]:
    return [(e.action, e.target_id) for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def last_feed_item() -> FeedItem:
    return db.session.scalars(select(FeedItem).order_by(FeedItem.id.desc())).first()  # type: ignore[return-value]
