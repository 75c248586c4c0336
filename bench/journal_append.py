"""Changes per second through the service layer, each committed with its journal entry (the outbox).

    python -m bench.journal_append [--database sqlite|postgresql] [--changes 2000] [--pg-url URL]

Each change is one `save_door` call in its own transaction: validation, the door row, the journal
entry with the next per-site sequence number, and the audit entry, then COMMIT.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.report import emit, summary
from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import init_keys, load_keys
from server.app import create_app
from server.config import ServerConfig
from server.extensions import db
from server.models import Base
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.audit import Actor


def run(url: str, changes: int, key_dir: Path) -> list[float]:
    """Latencies (ms) of `changes` door-policy updates, each its own transaction."""
    config = parse_config(ServerConfig, {"mode": "development", "database_url": url, "key_dir": str(key_dir)})
    app = create_app(config, keys=load_keys(key_dir))
    actor = Actor("bench")
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        site = sites.create_site(db.session, actor, code="bench", name="Bench")
        door = sites.save_door(db.session, actor, site, "Gate", DoorMethods())
        db.session.commit()
        latencies = []
        for i in range(changes):
            started = time.perf_counter()
            sites.save_door(db.session, actor, site, "Gate", DoorMethods(face=i % 2 == 0), door)
            db.session.commit()
            latencies.append((time.perf_counter() - started) * 1000)
        Base.metadata.drop_all(db.engine)
        db.engine.dispose()
    return latencies


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="an empty PostgreSQL database the benchmark may create tables in",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp) / "keys"
        init_keys(key_dir)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}" if args.database == "sqlite" else args.pg_url
        started = time.perf_counter()
        latencies = run(url, args.changes, key_dir)
        elapsed = time.perf_counter() - started
    stats = summary(latencies)
    rate = args.changes / (sum(latencies) / 1000)
    emit(
        f"journal_append ({args.database})",
        [
            ("changes", str(args.changes)),
            ("changes/s", f"{rate:.0f}"),
            ("latency p50 / p99", f"{stats['p50']:.2f} / {stats['p99']:.2f} ms"),
            ("wall time", f"{elapsed:.1f} s"),
        ],
        {"database": args.database, "changes": args.changes, "changes_per_s": rate, "latency_ms": stats},
    )


if __name__ == "__main__":
    main()
