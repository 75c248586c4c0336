"""Time to purge old access events through `run_retention`, in chunks, on SQLite or PostgreSQL.

    python -m bench.retention [--database sqlite|postgresql] [--events 1000000] [--chunk-rows 5000] [--pg-url URL]

Fills one site with `--events` access events spread evenly over 180 days (the site keeps 90, so about
half are due) plus a second site's events of the same age that must stay, then times the first purge
(the backlog a new install or a shortened period meets) and a steady-state run with one day's events due.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.report import emit
from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import init_keys, load_keys
from gatehouse_core.wire.messages import Decision, EntryMethod
from server.app import create_app
from server.config import ServerConfig
from server.extensions import db
from server.models import AccessEvent, Base, utcnow
from server.services.access import sites
from server.services.audit import Actor
from server.services.privacy import retention

_SPAN_DAYS = 180
_INSERT_BATCH = 20_000


def fill(site_id: int, count: int, span: timedelta = timedelta(days=_SPAN_DAYS), age: timedelta = timedelta(0)) -> None:
    """`count` events of a site, evenly spread over `span` ending `age` ago."""
    now = utcnow() - age
    step = span / max(count, 1)
    table = AccessEvent.__table__
    for start in range(0, count, _INSERT_BATCH):
        rows = [
            {
                "event_uid": str(uuid.uuid4()),
                "site_id": site_id,
                "method": EntryMethod.CARD.value,
                "decision": Decision.GRANT.value,
                "reason": "ok",
                "person_pseudonym": f"p-{i % 5000:016x}",
                "occurred_at": now - step * i,
                "received_at": now,
            }
            for i in range(start, min(start + _INSERT_BATCH, count))
        ]
        db.session.execute(insert(table), rows)
        db.session.commit()


def events_of(site_id: int) -> int:
    return db.session.scalar(select(func.count()).where(AccessEvent.site_id == site_id)) or 0


def check(report: retention.RetentionReport, site_id: int, other_id: int, other_count: int, gone: int) -> None:
    """Exactly the due events went: none older than the cutoff is left, and the other site lost nothing."""
    cutoff = report.at - timedelta(days=90)
    left = db.session.scalar(
        select(func.count()).where(AccessEvent.site_id == site_id, AccessEvent.occurred_at < cutoff)
    )
    reported = sum(s.events for s in report.sites)
    if left or reported != gone or events_of(other_id) != other_count:
        raise SystemExit(f"wrong purge: {reported} reported, {gone} gone, {left} due left, other site changed")


def run(url: str, count: int, chunk_rows: int, key_dir: Path) -> dict[str, float]:
    """Figures of one bench run."""
    config = parse_config(ServerConfig, {"mode": "development", "database_url": url, "key_dir": str(key_dir)})
    app = create_app(config, keys=load_keys(key_dir))
    actor = Actor("bench")
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        site = sites.create_site(db.session, actor, code="bench", name="Bench")
        other = sites.create_site(db.session, actor, code="other", name="Other")
        other.event_retention_days = 365
        db.session.commit()
        site_id, other_id = site.id, other.id
        started = time.perf_counter()
        fill(site_id, count)
        fill(other_id, count // 10)
        fill_seconds = time.perf_counter() - started
        before = events_of(site_id)

        started = time.perf_counter()
        report = retention.run_retention(db.session, actor, chunk_rows=chunk_rows)
        purge_seconds = time.perf_counter() - started
        purged = sum(s.events for s in report.sites)
        after = events_of(site_id)
        check(report, site_id, other_id, count // 10, before - after)

        # Steady state: a day's worth of events has become due since the last run.
        fill(site_id, count // _SPAN_DAYS, span=timedelta(days=1), age=timedelta(days=90, minutes=1))
        before_daily = events_of(site_id)
        started = time.perf_counter()
        daily = retention.run_retention(db.session, actor, chunk_rows=chunk_rows)
        daily_seconds = time.perf_counter() - started
        due = sum(s.events for s in daily.sites)
        check(daily, site_id, other_id, count // 10, before_daily - events_of(site_id))
        # Ends the session's read transaction, whose lock DROP TABLE would otherwise wait for.
        db.session.remove()
        Base.metadata.drop_all(db.engine)
        db.engine.dispose()
    return {
        "events": before,
        "fill_s": fill_seconds,
        "purged": purged,
        "purge_s": purge_seconds,
        "kept": after,
        "daily_due": due,
        "daily_s": daily_seconds,
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=retention.DEFAULT_CHUNK_ROWS)
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
        figures = run(url, args.events, args.chunk_rows, key_dir)
    rate = figures["purged"] / figures["purge_s"]
    emit(
        f"retention ({args.database})",
        [
            ("events at the site (180 days)", f"{figures['events']:,.0f}"),
            ("chunk rows", f"{args.chunk_rows:,}"),
            ("first purge: events removed", f"{figures['purged']:,.0f} (kept {figures['kept']:,.0f})"),
            ("first purge: seconds", f"{figures['purge_s']:.1f}"),
            ("first purge: events/s", f"{rate:,.0f}"),
            ("daily run: events removed", f"{figures['daily_due']:,.0f}"),
            ("daily run: seconds", f"{figures['daily_s']:.2f}"),
        ],
        {"database": args.database, "chunk_rows": args.chunk_rows, "events_per_s": rate, **figures},
    )


if __name__ == "__main__":
    main()
