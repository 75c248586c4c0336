"""A full roster snapshot (with 512-d face templates) to one terminal, from its request to applied.

    python -m bench.sync_snapshot [--people 50000]

The site is seeded in bulk: every person is allowed at the terminal's face door, has a key card, an
active face consent and a 512-d float32 template sealed with the server's template key. A terminal
with an empty store then connects: the clock starts when its birth message (the request) reaches the
broker and stops when its ack for the snapshot's sequence does. In between the worker builds the
roster, re-seals every template for the terminal, signs and publishes the parts; the terminal (a real
TerminalRuntime in its own process) verifies each part, stages it beside the live roster, checks the
roster hash and swaps it in. Bytes are the signed payloads published to the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import insert

from bench.report import emit
from bench.sync_rig import ACTOR, Deployment, wait_until
from gatehouse_core.sealed import seal
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.models import (
    ConsentChannel,
    ConsentRecord,
    Credential,
    FaceTemplate,
    Person,
    access_group_members,
)
from server.services.access import access, sites
from server.services.face.templates import template_context

MODEL = "w600k_mbf"


def seed(deployment: Deployment, code: str, door_id: int, people: int) -> None:
    """Bulk-insert people with cards, consent and sealed templates, all allowed at the door."""
    with deployment.app.app_context():
        site = sites.get_site(db.session, code)
        door = next(d for d in site.doors if d.id == door_id)
        group = access.create_group(db.session, ACTOR, site, "Residents", [door], [])
        db.session.commit()
        key = deployment.keys.template_key
        for start in range(0, people, 5000):
            ids = range(start + 1, min(people, start + 5000) + 1)
            db.session.execute(
                insert(Person),
                [{"id": i, "site_id": site.id, "pseudonym": f"p-{i:016x}", "full_name": f"Resident {i}"} for i in ids],
            )
            db.session.execute(
                insert(ConsentRecord),
                [
                    {
                        "id": i,
                        "person_id": i,
                        "site_id": site.id,
                        "notice_sha256": "0" * 64,
                        "channel": ConsentChannel.DESK,
                    }
                    for i in ids
                ],
            )
            db.session.execute(
                insert(FaceTemplate),
                [
                    {
                        "person_id": i,
                        "consent_id": i,
                        "model_id": MODEL,
                        "sealed_vector": seal(key, os.urandom(2048), template_context(i, MODEL)),
                    }
                    for i in ids
                ],
            )
            db.session.execute(
                insert(Credential),
                [{"site_id": site.id, "person_id": i, "kind": "card", "lookup_hash": f"{i:064x}"} for i in ids],
            )
            db.session.execute(insert(access_group_members), [{"group_id": group.id, "person_id": i} for i in ids])
            db.session.commit()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gatehouse-snapshot-") as tmp:
        deployment = Deployment(Path(tmp))
        try:
            seconds, sent_bytes, parts = run(deployment, args.people)
        finally:
            deployment.close()
    emit(
        "sync_snapshot",
        [
            ("people (each with a 512-d template and a card)", f"{args.people:,}"),
            ("request to applied (s)", f"{seconds:.2f}"),
            ("bytes sent", f"{sent_bytes:,} ({sent_bytes / 1e6:.1f} MB in {parts} parts)"),
            ("goal", "<= 5 s"),
        ],
        {"people": args.people, "seconds": seconds, "bytes": sent_bytes, "parts": parts},
    )


def run(deployment: Deployment, people: int) -> tuple[float, int, int]:
    """Seconds from request to applied, bytes and parts sent."""
    code = "bench"
    (door,) = deployment.site(code, doors=1, face=True)
    seed(deployment, code, door, people)
    (config,) = deployment.provision(code, [[door]])
    ident = config.parent.name
    deployment.start_broker()

    worker = deployment.start_worker()
    sent = {"bytes": 0, "parts": 0}
    publish = worker.publisher._publish
    sync_topic = terminal_topic(code, ident, Channel.SYNC)

    def counting(topic: str, payload: bytes):  # type: ignore[no-untyped-def]
        if topic == sync_topic:
            sent["bytes"] += len(payload)
            sent["parts"] += 1
        return publish(topic, payload)

    worker.publisher._publish = counting

    def published() -> bool:
        with deployment.app.app_context():
            site = sites.get_site(db.session, code)
            return bool(site.published_seq == site.journal_seq)

    # The worker first publishes the seeding's journal range (to a terminal that has never connected).
    wait_until(published, 300, "the journal published")
    sent.update(bytes=0, parts=0)
    with deployment.app.app_context():
        head = int(sites.get_site(db.session, code).journal_seq)

    marks: dict[str, float] = {}
    done = threading.Event()

    def on_message(client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        if message.topic.endswith("/birth"):
            marks.setdefault("request", now)
        elif json.loads(message.payload)["applied_seq"] >= head:
            marks.setdefault("applied", now)
            done.set()

    spy = deployment.server_client("bench-spy")
    spy.on_message = on_message
    spy.subscribe([(terminal_topic(code, ident, Channel.BIRTH), 1), (terminal_topic(code, ident, Channel.ACK), 1)])
    time.sleep(0.5)
    deployment.spawn_terminals([config], 1)
    wait_until(done.is_set, 300, "the snapshot applied")
    spy.loop_stop()
    spy.disconnect()
    return marks["applied"] - marks["request"], sent["bytes"], sent["parts"]


if __name__ == "__main__":
    main()
