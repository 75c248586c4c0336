"""Red team, issue 18 item 2: while the worker builds one terminal's snapshot, every other terminal waits.

The worker has one loop thread, and a snapshot of 50,000 people takes it seconds; a revocation committed
meanwhile reached no terminal of the site until the snapshot was done. Snapshot parts must now go out a
few per loop turn with pending journal ranges published between turns, so another terminal's revocation
is published before the snapshot finishes, while the snapshotting terminal still gets its messages in
order (its parts back to back, the revocation after them). Real mosquitto and the worker's own loop; the
worker is held at the snapshot's first part until the revocation is committed, so nothing depends on speed.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import pytest

from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import Birth
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.models import Site
from server.services.access import access
from server.services.people import credentials, people
from tests.conftest import TEST_ACTOR
from tests.integration.conftest import rig, secure_broker  # noqa: F401 (fixtures)
from tests.integration.sync_rig import SyncRig, wait_for
from tests.integration.test_broker_security import Peer

pytestmark = pytest.mark.integration


def test_another_terminals_revocation_is_published_before_the_snapshot_ends(
    rig: SyncRig,  # noqa: F811
    make_site: Any,
    make_door: Any,
    make_person: Any,
) -> None:
    site = make_site()
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [door], ALWAYS.windows)
    residents = []
    for n in range(30):
        person = make_person(site, f"Resident {n}")
        access.add_member(db.session, TEST_ACTOR, group, person)
        credentials.add_card(db.session, TEST_ACTOR, rig.keys, person, f"{n:08X}")
        residents.append(person)
    db.session.commit()
    flooder = rig.add_terminal(site, [door], "Stolen gate")
    honest = rig.add_terminal(site, [door], "North gate")
    attacker = Peer(rig.broker.terminal_mqtt(flooder.ident, flooder.dir / "mqtt_password")).connected()
    flooder_sync = terminal_topic(site.code, flooder.ident, Channel.SYNC)
    honest_sync = terminal_topic(site.code, honest.ident, Channel.SYNC)

    worker = rig.start_worker()
    worker.publisher.part_budget = 512  # a snapshot of many parts, standing in for 300 parts of 512 KiB
    published: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()
    snapshot_started, revoked = threading.Event(), threading.Event()
    publish = worker.publisher._publish

    def publish_and_note(topic: str, payload: bytes) -> Any:
        body = json.loads(payload[68:]) if payload[:4] == b"GHS1" else {}
        with lock:
            published.append((topic, body))
        if topic == flooder_sync and body.get("type") == "snapshot" and not snapshot_started.is_set():
            snapshot_started.set()
            revoked.wait(30)  # the worker's loop stops here until the revocation is committed
        return publish(topic, payload)

    # Let the worker send what was pending at its start (both terminals' first snapshots) first: once the
    # journal is published, the loop waits idle for messages only when no snapshot is left to stream.
    idle = threading.Event()
    drain = worker._drain

    def drain_and_note(timeout: float) -> list[tuple[str, bytes]]:
        if timeout > 0:
            idle.set()
        return drain(timeout)

    worker._drain = drain_and_note  # type: ignore[method-assign]
    wait_for(lambda: _published_head(site), what="the journal published")
    idle.clear()
    assert idle.wait(20), "the worker never went idle"
    worker.publisher._publish = publish_and_note

    db.session.expire_all()
    head = db.session.get(Site, site.id).journal_seq  # type: ignore[union-attr]
    forged = Birth(
        terminal=flooder.ident,
        applied_seq=head,
        roster_hash=secrets.token_hex(32),
        software="gatehouse-terminal/0",
        nonce=secrets.token_hex(16),
    )
    attacker.publish(terminal_topic(site.code, flooder.ident, Channel.BIRTH), encode(forged))
    assert snapshot_started.wait(20), "the worker sent no snapshot for a birth with a wrong roster hash"
    try:
        leaver = residents[7]
        people.deactivate(db.session, TEST_ACTOR, leaver)
        db.session.commit()
    finally:
        revoked.set()

    def removal_for(topic: str, body: dict[str, Any]) -> bool:
        return body.get("type") == "delta" and {"kind": "person", "key": leaver.pseudonym} in body.get("removals", [])

    def seen() -> list[tuple[str, dict[str, Any]]]:
        with lock:
            return list(published)

    wait_for(
        lambda: (
            any(t == honest_sync and removal_for(t, b) for t, b in seen())
            and any(t == flooder_sync and b.get("type") == "snapshot" and b.get("last") for t, b in seen())
            and any(t == flooder_sync and removal_for(t, b) for t, b in seen())
        ),
        what="the revocation to both terminals and the end of the snapshot",
    )
    order = seen()
    revocation = next(i for i, (t, b) in enumerate(order) if t == honest_sync and removal_for(t, b))
    parts = [i for i, (t, b) in enumerate(order) if t == flooder_sync and b.get("type") == "snapshot"]
    assert len(parts) > 2
    assert revocation < parts[-1], "the other terminal's revocation waited for the whole snapshot"
    # The snapshotting terminal still gets its parts back to back, and the revocation after them.
    flooder_messages = [b for t, b in order if t == flooder_sync]
    kinds = [b["type"] for b in flooder_messages]
    first_part = kinds.index("snapshot")
    last_part = len(kinds) - 1 - kinds[::-1].index("snapshot")
    assert set(kinds[first_part : last_part + 1]) == {"snapshot"}
    assert any(removal_for(flooder_sync, b) for b in flooder_messages[last_part + 1 :])
    attacker.close()


def _published_head(site: Site) -> bool:
    db.session.expire_all()
    fresh = db.session.get(Site, site.id)
    done = fresh is not None and fresh.published_seq == fresh.journal_seq
    db.session.rollback()
    return done
