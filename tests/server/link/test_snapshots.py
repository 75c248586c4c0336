"""server.link.snapshots: snapshots streamed a few parts per turn, one in flight per terminal, within a budget."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.messages import Birth
from server.extensions import db
from server.link.publisher import SyncPublisher
from server.link.snapshots import ALARM_QUIET, SNAPSHOT_BUDGET, SNAPSHOT_WINDOW
from server.models import Alarm, AlarmKind, Site, Terminal, utcnow
from server.services.access import access
from server.services.people import credentials, people
from server.services.privacy import alarms
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR


class Sent:
    """A delivery the broker acknowledged at once."""

    def wait_for_publish(self, timeout: float | None = None) -> None:
        """Nothing to wait for."""

    def is_published(self) -> bool:
        """Always."""
        return True


class Recorder:
    """Publishes into a list of (terminal ident, message type, body)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: bytes) -> Sent:
        body = json.loads(payload[68:])
        self.messages.append((topic.split("/")[3], body["type"], body))
        return Sent()

    def of(self, ident: str) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, body) for who, kind, body in self.messages if who == ident]


@pytest.fixture
def site_of_two(make_site, make_door, make_person, keys) -> dict[str, Any]:
    site = make_site()
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], ALWAYS.windows)
    residents = []
    for n in range(12):
        person = make_person(site, f"Resident {n}")
        access.add_member(db.session, TEST_ACTOR, group, person)
        credentials.add_card(db.session, TEST_ACTOR, keys, person, f"{n:08X}")
        residents.append(person)
    made = {name: terminals.provision_terminal(db.session, TEST_ACTOR, site, name, [door]).terminal for name in "AB"}
    db.session.commit()
    return {"site": site, "residents": residents, **made}


def publisher_for(keys: Any) -> tuple[SyncPublisher, Recorder, list[float]]:
    recorder = Recorder()
    publisher = SyncPublisher(keys, recorder, part_budget=512)
    publisher.snapshots.parts_per_turn = 2
    now = [1000.0]
    publisher.snapshots._clock = lambda: now[0]
    while publisher.publish_pending(db.session):
        pass
    while publisher.advance_snapshots(db.session):
        pass
    recorder.messages.clear()
    return publisher, recorder, now


def wrong_birth(terminal: Terminal, seq: int) -> Birth:
    return Birth(
        terminal=terminal.ident,
        applied_seq=seq,
        roster_hash=secrets.token_hex(32),
        software="gatehouse-terminal/0",
        nonce=secrets.token_hex(16),
    )


def head(site: Site) -> int:
    db.session.refresh(site)
    return site.published_seq


def test_snapshot_streams_in_turns_and_the_terminals_own_messages_wait_behind_it(site_of_two, keys):
    site, a, b = site_of_two["site"], site_of_two["A"], site_of_two["B"]
    publisher, recorder, _ = publisher_for(keys)
    birth = wrong_birth(a, head(site))

    answer = publisher.answer_birth(db.session, a, birth)
    db.session.commit()
    assert answer.action == "snapshot" and answer.streamed
    assert recorder.messages == []  # nothing is built while the birth is handled
    assert publisher.advance_snapshots(db.session)
    assert [kind for kind, _ in recorder.of(a.ident)] == ["snapshot", "snapshot"]  # one turn: two parts

    leaver = site_of_two["residents"][3]
    people.deactivate(db.session, TEST_ACTOR, leaver)
    db.session.commit()
    assert publisher.publish_pending(db.session)
    assert [kind for kind, _ in recorder.of(b.ident)] == ["delta"]  # the other terminal at once
    assert [kind for kind, _ in recorder.of(a.ident)] == ["snapshot", "snapshot"]  # this one waits

    repeat = wrong_birth(a, head(site))
    assert publisher.answer_birth(db.session, a, repeat).streamed  # answered by the stream in flight
    while publisher.advance_snapshots(db.session):
        pass
    kinds = [kind for kind, _ in recorder.of(a.ident)]
    assert kinds[-2:] == ["delta", "in_sync"] and set(kinds[:-2]) == {"snapshot"} and len(kinds) > 4
    parts = [body for kind, body in recorder.of(a.ident) if kind == "snapshot"]
    assert len({p["snapshot_id"] for p in parts}) == 1 and parts[-1]["last"]
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert recorder.of(a.ident)[-1][1]["nonce"] == repeat.nonce


def test_births_over_the_budget_wait_for_the_window_and_raise_one_alarm(site_of_two, keys):
    site, a = site_of_two["site"], site_of_two["A"]
    publisher, recorder, now = publisher_for(keys)

    def ask() -> None:
        publisher.answer_birth(db.session, a, wrong_birth(a, head(site)))
        db.session.commit()
        while publisher.advance_snapshots(db.session):
            pass
        now[0] += 1

    for _ in range(SNAPSHOT_BUDGET + 3):
        ask()
    snapshots = {body["snapshot_id"] for kind, body in recorder.of(a.ident) if kind == "snapshot"}
    assert len(snapshots) == SNAPSHOT_BUDGET
    assert publisher.snapshots.in_flight(site.code, a.ident) is not None and not publisher.snapshots.busy()
    raised = db.session.scalars(select(Alarm).where(Alarm.kind == AlarmKind.SNAPSHOT_BUDGET)).all()
    assert len(raised) == 1 and raised[0].site_id == site.id and a.ident in raised[0].message

    now[0] += SNAPSHOT_WINDOW  # the window has passed: the snapshot put off goes out
    assert publisher.snapshots.busy()
    while publisher.advance_snapshots(db.session):
        pass
    snapshots = {body["snapshot_id"] for kind, body in recorder.of(a.ident) if kind == "snapshot"}
    assert len(snapshots) == SNAPSHOT_BUDGET + 1

    # The alarm stays open while the terminal keeps asking too often, and clears a quiet day later.
    later = utcnow() + timedelta(seconds=ALARM_QUIET + 60)
    assert (
        alarms.resolve_snapshot_budget(
            db.session, publisher.snapshots.flooding(), timedelta(seconds=ALARM_QUIET), later
        )
        == 0
    )
    now[0] += ALARM_QUIET
    assert (
        alarms.resolve_snapshot_budget(
            db.session, publisher.snapshots.flooding(), timedelta(seconds=ALARM_QUIET), later
        )
        == 1
    )
    db.session.commit()
    assert alarms.open_alarms(db.session) == []


def test_a_site_wide_change_streams_snapshots_only_to_terminals_online_now(site_of_two, keys):
    # A terminal that never connected has no broker session to keep the parts, and one offline would meet a stream
    # half sent when it comes back (its birth's snapshot would follow it, twice the bytes): both ask in their birth.
    from server.models import TerminalStatus
    from server.services.access import sites

    site, a, b = site_of_two["site"], site_of_two["A"], site_of_two["B"]
    publisher, recorder, _ = publisher_for(keys)
    a.status = TerminalStatus.ONLINE
    b.status = TerminalStatus.OFFLINE
    door = a.doors[0]
    sites.edit_door(db.session, TEST_ACTOR, door, door.name, sites.DoorMethods(face=True))
    db.session.commit()

    assert publisher.publish_pending(db.session)
    assert publisher.snapshots.in_flight(site.code, a.ident) is not None
    assert publisher.snapshots.in_flight(site.code, b.ident) is None
    while publisher.advance_snapshots(db.session):
        pass
    assert {kind for kind, _ in recorder.of(a.ident)} == {"snapshot"}
    assert recorder.of(b.ident) == []

    # B's birth, behind the change, gets its own snapshot from its first part.
    answer = publisher.answer_birth(db.session, b, wrong_birth(b, head(site) - 1))
    db.session.commit()
    assert answer.action == "snapshot"
    while publisher.advance_snapshots(db.session):
        pass
    parts = [body for kind, body in recorder.of(b.ident) if kind == "snapshot"]
    assert parts[0]["part"] == 1 and parts[-1]["last"]


def test_a_terminal_whose_roster_differs_raises_one_divergence_alarm_until_it_matches(site_of_two, keys):
    from server.link import roster

    site, a, b = site_of_two["site"], site_of_two["A"], site_of_two["B"]
    publisher, _recorder, _ = publisher_for(keys)
    for _ in range(2):  # the repeat (answered by the snapshot in flight) is the same divergence: one alarm
        publisher.answer_birth(db.session, a, wrong_birth(a, head(site)))
        db.session.commit()
    publisher.answer_birth(db.session, b, wrong_birth(b, head(site) + 5))  # claims changes never made
    db.session.commit()
    found = db.session.scalars(select(Alarm).where(Alarm.kind == AlarmKind.SYNC_DIVERGENCE)).all()
    assert sorted(alarm.terminal_id for alarm in found) == sorted([a.id, b.id])
    assert all(alarm.resolved_at is None for alarm in found)
    while publisher.advance_snapshots(db.session):
        pass
    for terminal in (a, b):
        matching = Birth(
            terminal=terminal.ident,
            applied_seq=head(site),
            roster_hash=roster.expected_hash(db.session, site, roster.scope_of(db.session, terminal)),
            software="gatehouse-terminal/0",
        )
        assert publisher.answer_birth(db.session, terminal, matching).action == "none"
        db.session.commit()
    db.session.expire_all()
    assert all(alarm.resolved_at is not None and alarm.resolved_by == "system" for alarm in found)
