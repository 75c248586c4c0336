"""Red team, issue 18 item 2: a stolen terminal floods the worker with births that each cost a full snapshot.

A birth whose roster hash disagrees is answered with a snapshot (at 50,000 people about 150 MB and 4.5 s).
The attacker's credentials send births with a fresh random hash, either in a burst or one after another
as each answer completes. The worker must keep at most one snapshot in flight per terminal (births while
it streams are answered by it), spend at most the terminal's budget of snapshots per window, and raise an
alarm when the budget is exceeded. Everything is real: mosquitto with the generated config and ACL, the
worker's own loop in a thread, and an MQTT client with the terminal's broker password.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import Birth
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.link.worker import Worker
from server.models import Alarm, Site
from server.services.access import access
from server.services.people import credentials
from tests.conftest import TEST_ACTOR
from tests.integration.conftest import rig, secure_broker  # noqa: F401 (fixtures)
from tests.integration.sync_rig import SyncRig, TerminalHandle, wait_for
from tests.integration.test_broker_security import Peer

pytestmark = pytest.mark.integration

BUDGET = 3  # snapshots a terminal may cause per window (the worker's default: 3 an hour)
FLOOD = 12  # the report sent 30 births in 6 s; a dozen is plenty to cross the budget


class Observed:
    """What the worker's own loop did: births handled, when it next waited idle, what it published."""

    def __init__(self, worker: Worker) -> None:
        self.lock = threading.Lock()
        # If set, the worker's loop stops at the first snapshot part until this event is set.
        self.hold_first_part: threading.Event | None = None
        self.births = 0
        self.idle_after = -1  # births handled when the loop last waited for messages with nothing left to do
        self.idle_turns = 0  # how often it has done so
        self.snapshot_parts: list[tuple[str, int, bool]] = []  # (snapshot id, part, last) as published
        handle_birth = worker.handlers[Channel.BIRTH]
        drain = worker._drain
        publish = worker.publisher._publish

        def birth(round_: Any, ref: Any, payload: bytes) -> None:
            handle_birth(round_, ref, payload)
            with self.lock:
                self.births += 1

        def drain_and_note(timeout: float) -> list[tuple[str, bytes]]:
            if timeout > 0:  # the loop blocks only when it has no work in hand
                with self.lock:
                    self.idle_after = self.births
                    self.idle_turns += 1
            return drain(timeout)

        def publish_and_note(topic: str, payload: bytes) -> Any:
            body = json.loads(payload[68:]) if payload[:4] == b"GHS1" else {}
            if body.get("type") == "snapshot":
                with self.lock:
                    self.snapshot_parts.append((body["snapshot_id"], body["part"], body["last"]))
                    first = len(self.snapshot_parts) == 1
                if first and self.hold_first_part is not None:
                    self.hold_first_part.wait(30)
            return publish(topic, payload)

        worker.handlers[Channel.BIRTH] = birth
        worker._drain = drain_and_note  # type: ignore[method-assign]
        worker.publisher._publish = publish_and_note

    def settled(self, site: Site) -> None:
        """Wait until the worker sent what was pending at its start (the new terminal's first snapshot)."""
        wait_for(lambda: head_of(site, published=True) == head_of(site), what="the journal published")
        with self.lock:
            turns = self.idle_turns
        # The loop waits idle only with no snapshot to stream: the first snapshot is done.
        wait_for(lambda: self.idle_turns > turns, what="the worker idle after starting")
        with self.lock:
            self.snapshot_parts.clear()

    def snapshots(self) -> set[str]:
        with self.lock:
            return {sid for sid, _, _ in self.snapshot_parts}

    def finished(self) -> set[str]:
        with self.lock:
            return {sid for sid, _, last in self.snapshot_parts if last}

    def idle_after_birth(self, count: int) -> bool:
        with self.lock:
            return self.idle_after >= count


@pytest.fixture
def stolen(rig: SyncRig, make_site, make_door, make_person) -> Iterator[tuple[TerminalHandle, Peer, Site]]:  # noqa: F811
    """A site with people on one door and the broker credentials of its terminal, in the attacker's hands."""
    site = make_site()
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], ALWAYS.windows)
    for n in range(20):
        person = make_person(site, f"Resident {n}")
        access.add_member(db.session, TEST_ACTOR, group, person)
        credentials.add_card(db.session, TEST_ACTOR, rig.keys, person, f"{n:08X}")
    db.session.commit()
    handle = rig.add_terminal(site, [door], "North gate")
    peer = Peer(rig.broker.terminal_mqtt(handle.ident, handle.dir / "mqtt_password")).connected()
    try:
        yield handle, peer, site
    finally:
        peer.close()


def forged_birth(handle: TerminalHandle, head: int) -> bytes:
    """A birth at the head with a roster hash the server cannot match: each one asks for a snapshot."""
    return encode(
        Birth(
            terminal=handle.ident,
            applied_seq=head,
            roster_hash=secrets.token_hex(32),
            software="gatehouse-terminal/0",
            nonce=secrets.token_hex(16),
        )
    )


def head_of(site: Site, *, published: bool = False) -> int:
    db.session.expire_all()
    fresh = db.session.get(Site, site.id)
    assert fresh is not None
    head = fresh.published_seq if published else fresh.journal_seq
    db.session.rollback()
    return head


def test_births_one_after_another_stay_within_the_budget_and_raise_an_alarm(rig, stolen):  # noqa: F811
    handle, attacker, site = stolen
    observed = Observed(rig.start_worker())
    observed.settled(site)
    topic = terminal_topic(site.code, handle.ident, Channel.BIRTH)
    head = head_of(site)

    for sent in range(1, FLOOD + 1):
        attacker.publish(topic, forged_birth(handle, head))
        # Each birth only after the worker has handled the last one and finished whatever it started for it.
        wait_for(lambda n=sent: observed.idle_after_birth(n), what=f"the worker idle after birth {sent}")

    assert len(observed.snapshots()) <= BUDGET, f"{FLOOD} births built {len(observed.snapshots())} snapshots"
    assert observed.finished() == observed.snapshots()
    db.session.expire_all()
    raised = db.session.scalars(select(Alarm).where(Alarm.kind == "snapshot_budget")).all()
    assert [a.site_id for a in raised] == [site.id]
    assert handle.ident in raised[0].message and "North gate" in raised[0].message


def test_a_burst_of_births_is_answered_by_the_snapshot_in_flight(rig, stolen):  # noqa: F811
    handle, attacker, site = stolen
    worker = rig.start_worker()
    worker.publisher.part_budget = 512  # many small parts: the snapshot takes the worker several loop turns
    arrived = threading.Event()
    observed = Observed(worker)
    observed.settled(site)
    observed.hold_first_part = arrived
    topic = terminal_topic(site.code, handle.ident, Channel.BIRTH)
    head = head_of(site)

    attacker.publish(topic, forged_birth(handle, head))
    wait_for(lambda: bool(observed.snapshots()), what="the first snapshot part")
    for _ in range(FLOOD - 1):
        attacker.publish(topic, forged_birth(handle, head))
    # The burst is in the worker's inbox while the first snapshot has sent one part.
    wait_for(lambda: worker._inbox.qsize() >= FLOOD - 1, what="the burst queued at the worker")
    arrived.set()
    wait_for(lambda: observed.idle_after_birth(FLOOD), what="the worker idle after the burst")

    assert len(observed.snapshots()) == 1, f"a burst of {FLOOD} births built {len(observed.snapshots())} snapshots"
    assert observed.finished() == observed.snapshots()
