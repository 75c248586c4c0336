"""Latency from one change committed through the service layer to the applied-ack of every terminal.

    python -m bench.sync_fanout [--terminals 200] [--changes 30] [--processes 4]

A site with one door per terminal and a resident allowed at every door. Each change adds a key card to
that resident through `credentials.add_card` (journal entry in the same transaction); the clock starts
when COMMIT returns and stops, per terminal, when its ack for that sequence reaches the broker. The
terminals are real TerminalRuntimes (signature check, SQLite apply with synchronous=FULL, ack) in a
few host processes; the worker is its own process; mosquitto runs with TLS and per-terminal ACLs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from bench.report import emit, summary
from bench.sync_rig import ACTOR, Deployment, wait_until
from gatehouse_core.wire.topics import Channel, all_terminals
from server.extensions import db
from server.models import Person
from server.services.access import access, sites
from server.services.people import credentials, people


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--processes", type=int, default=4, help="host processes for the terminals")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gatehouse-fanout-") as tmp:
        deployment = Deployment(Path(tmp))
        try:
            per_terminal, all_acked = run(deployment, args.terminals, args.changes, args.processes)
        finally:
            deployment.close()
    one, every = summary(per_terminal), summary(all_acked)
    emit(
        "sync_fanout",
        [
            ("terminals", str(args.terminals)),
            ("changes", str(args.changes)),
            ("per-terminal ack p50 / p99 (ms)", f"{one['p50']:.0f} / {one['p99']:.0f}"),
            ("last terminal ack p50 / p99 (ms)", f"{every['p50']:.0f} / {every['p99']:.0f}"),
            ("goal", "p99 <= 500 ms"),
        ],
        {"terminals": args.terminals, "changes": args.changes, "per_terminal_ms": one, "all_terminals_ms": every},
    )


def run(deployment: Deployment, n: int, changes: int, processes: int) -> tuple[list[float], list[float]]:
    """Per-terminal and all-terminal ack latencies (ms)."""
    code = "bench"
    doors = deployment.site(code, doors=n, face=False)
    with deployment.app.app_context():
        site = sites.get_site(db.session, code)
        group = access.create_group(db.session, ACTOR, site, "Everyone", site.doors, [])
        resident = people.create_person(db.session, ACTOR, site, full_name="Resident")
        access.add_member(db.session, ACTOR, group, resident)
        db.session.commit()
        resident_id = resident.id
    configs = deployment.provision(code, [[d] for d in doors])
    deployment.start_broker()

    acks: dict[str, int] = {}
    arrivals: dict[tuple[str, int], float] = {}
    lock = threading.Lock()

    def on_ack(client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        ident = message.topic.split("/")[3]
        seq = json.loads(message.payload)["applied_seq"]
        with lock:
            if seq > acks.get(ident, 0):
                acks[ident] = seq
                arrivals[(ident, seq)] = now

    spy = deployment.server_client("bench-spy")
    spy.on_message = on_ack
    spy.subscribe(all_terminals(Channel.ACK), qos=1)
    deployment.spawn_worker()
    deployment.spawn_terminals(configs, processes)

    def head() -> int:
        with deployment.app.app_context():
            return int(sites.get_site(db.session, code).journal_seq)

    def all_at(seq: int) -> bool:
        with lock:
            return len(acks) == n and min(acks.values()) >= seq

    def add_card(i: int) -> int:
        with deployment.app.app_context():
            person = db.session.get(Person, resident_id)
            assert person is not None
            credentials.add_card(db.session, ACTOR, deployment.keys, person, f"{0xA0000000 + i:08X}")
            db.session.commit()
            return int(sites.get_site(db.session, code).journal_seq)

    wait_until(lambda: all_at(head()), 180, "every terminal in sync")
    # Warm-up: the first change after start-up makes each terminal re-announce itself once (verification).
    for i in range(3):
        seq = add_card(i)
        wait_until(lambda s=seq: all_at(s), 120, "warm-up change acknowledged")
    time.sleep(2)

    per_terminal: list[float] = []
    all_acked: list[float] = []
    for i in range(changes):
        committed_seq = add_card(100 + i)
        started = time.perf_counter()
        wait_until(lambda s=committed_seq: all_at(s), 60, f"change {i} acknowledged by every terminal")
        with lock:
            latencies = [
                (min(t for (who, s), t in arrivals.items() if who == ident and s >= committed_seq) - started) * 1000
                for ident in acks
            ]
        per_terminal += latencies
        all_acked.append(max(latencies))
        time.sleep(0.2)
    spy.loop_stop()
    spy.disconnect()
    return per_terminal, all_acked


if __name__ == "__main__":
    main()
