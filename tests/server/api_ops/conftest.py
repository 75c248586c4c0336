"""Fixtures for the integration API: keys with chosen scopes, a two-site world with doors, terminals and feed items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask

from server.extensions import db
from server.models import Alarm, AlarmKind, AlarmSeverity, Door, FeedKind, Site, Terminal, utcnow
from server.services.integrations import api_keys
from server.services.operations import feed
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR

ALL_SCOPES = api_keys.SCOPES


@dataclass
class World:
    """Two sites, each with a door served by a terminal, an open alarm and feed items."""

    north: Site
    south: Site
    north_gate: Door
    south_gate: Door
    north_terminal: Terminal
    south_terminal: Terminal


@pytest.fixture
def make_key(app: Flask) -> Callable[..., str]:
    """Create an API key through the service; returns the full key text."""

    def make(scopes: tuple[str, ...] = ALL_SCOPES, site: Site | None = None, name: str = "PMS") -> str:
        _key, full = api_keys.create(db.session, TEST_ACTOR, name, scopes, site.id if site else None)
        db.session.commit()
        return full

    return make


def add_events(site: Site, door: Door, count: int, topic: str = "access.granted") -> None:
    """Feed items as the event ingest writes them (a pseudonym, never a name or a credential)."""
    feed.record(
        db.session,
        [
            feed.NewItem(
                FeedKind.EVENT,
                topic,
                1000 + n,
                site.id,
                {"id": 1000 + n, "door_id": door.id, "site_id": site.id, "method": "card", "person": "p-01"},
            )
            for n in range(count)
        ],
    )
    db.session.commit()


@pytest.fixture
def world(make_site: Callable[..., Site], make_door: Callable[..., Door]) -> World:
    north, south = make_site("north"), make_site("south")
    north_gate, south_gate = make_door(north, "North gate"), make_door(south, "South gate")
    tn = terminals.provision_terminal(db.session, TEST_ACTOR, north, "tn", [north_gate]).terminal
    ts = terminals.provision_terminal(db.session, TEST_ACTOR, south, "ts", [south_gate]).terminal
    for site, door, ref in ((north, north_gate, "n1"), (south, south_gate, "s1")):
        db.session.add(
            Alarm(
                site_id=site.id,
                kind=AlarmKind.DOOR_FORCED,
                severity=AlarmSeverity.CRITICAL,
                ref=ref,
                door_id=door.id,
                message=f"{door.name} forced open",
                raised_at=utcnow(),
            )
        )
    db.session.commit()
    return World(north, south, north_gate, south_gate, tn, ts)


def bearer(key: str) -> dict[str, str]:
    """The header of a call with `key`."""
    return {"Authorization": f"Bearer {key}"}
