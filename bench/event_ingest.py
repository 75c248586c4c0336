"""Sustained access events per second stored by the worker on SQLite, from many terminals at once.

    python -m bench.event_ingest [--terminals 50] [--events 2000] [--processes 2]

Each terminal's outbox is filled with `--events` decisions (as if the doors had worked through an
outage); then the worker (its own process, as in production) and the terminals (real TerminalRuntimes
in host processes) start, and the terminals deliver their outboxes in batches until the server's
receipts let them purge. The rate is measured between the first and the last event stored (each stored
exactly once: the bench checks the count of distinct event ids at the end), over TLS mosquitto.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.report import emit
from bench.sync_rig import Deployment, wait_until
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.models import AccessEvent
from terminals.config import load_terminal_config
from terminals.store import TerminalStore


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--events", type=int, default=2000, help="events per terminal")
    parser.add_argument("--processes", type=int, default=2, help="host processes for the terminals")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gatehouse-events-") as tmp:
        deployment = Deployment(Path(tmp))
        try:
            total, measured, seconds, distinct = run(deployment, args.terminals, args.events, args.processes)
        finally:
            deployment.close()
    rate = measured / seconds
    emit(
        "event_ingest",
        [
            ("terminals", str(args.terminals)),
            ("events stored (distinct ids)", f"{distinct:,} of {total:,}"),
            ("seconds, first to last stored", f"{seconds:.2f}"),
            ("events/s", f"{rate:,.0f}"),
            ("goal", ">= 2,000 events/s on SQLite"),
        ],
        {"terminals": args.terminals, "events": total, "seconds": seconds, "events_per_s": rate, "distinct": distinct},
    )


def run(deployment: Deployment, n: int, per_terminal: int, processes: int) -> tuple[int, int, float, int]:
    """Events sent, events stored in the measured span, its seconds, distinct events stored."""
    doors = deployment.site("bench", doors=n, face=False)
    configs = deployment.provision("bench", [[d] for d in doors])
    now = datetime.now(UTC)
    for path, door in zip(configs, doors, strict=True):
        config = load_terminal_config(path)
        store = TerminalStore(config.data_dir / "terminal.db")
        store.add_events(
            [
                EventRecord(
                    uid=str(uuid.uuid4()),
                    door=door,
                    method=EntryMethod.CARD,
                    decision=Decision.GRANT if i % 10 else Decision.DENY,
                    reason="ok" if i % 10 else "unknown_card",
                    person=f"p-{i:016x}" if i % 10 else None,
                    at=now,
                )
                for i in range(per_terminal)
            ]
        )
        store.close()
    total = n * per_terminal
    deployment.start_broker()

    def stored() -> int:
        with deployment.app.app_context():
            return int(db.session.scalar(select(func.count()).select_from(AccessEvent)) or 0)

    deployment.spawn_worker()
    time.sleep(1.0)
    deployment.spawn_terminals(configs, processes)
    wait_until(lambda: stored() > 0, 120, "the first event stored")
    first, first_count = time.perf_counter(), stored()
    wait_until(lambda: stored() >= total, 600, "every event stored")
    seconds = time.perf_counter() - first
    with deployment.app.app_context():
        distinct = int(db.session.scalar(select(func.count(func.distinct(AccessEvent.event_uid)))) or 0)
    return total, total - first_count, seconds, distinct


if __name__ == "__main__":
    main()
