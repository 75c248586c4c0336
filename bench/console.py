"""Server time of the console's busiest pages with 100,000 people and 1,000,000 access events.

    python -m bench.console [--people 100000] [--events 1000000] [--requests 50]
                            [--database-url URL] [--reuse PATH_OR_URL] [--slow-sql MS]

Seeds a database (SQLite in a temporary directory by default; with --database-url, a scratch database
created on that PostgreSQL server and dropped afterwards; with --reuse, a SQLite file or PostgreSQL
database kept between runs and seeded only when empty), builds the real app on it, logs an admin in and
times --requests GETs of each page (people list, person page, events log, dashboard, audit log) with
varied search terms, people and filters. Requests run in process, so the time around each request is
server time: routing, queries and template rendering, no network. The goal is a p95 of at most 200 ms
per page. A page that answers 404 is reported as missing; any other status than 200 is an error and
makes the run exit non-zero. The machine's load average is printed: other work inflates the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, func, make_url, select, text
from sqlalchemy.engine import URL

from bench import console_seed
from bench.report import emit, summary
from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import init_keys, load_keys
from server.app import MIGRATIONS_DIR, create_app
from server.config import ServerConfig
from server.extensions import db
from server.models import AccessEvent, ConsoleRole, ConsoleUser, Door, Person, Site, Terminal, utcnow
from server.services.accounts import users
from server.services.audit import Actor

GOAL_MS = 200.0
ADMIN = "bench-admin"
WARMUP = 3


@dataclass
class Pools:
    """Real values from the database to vary the requests with."""

    sites: list[int]
    doors: list[int]
    terminals: list[int]
    person_ids: list[int]
    pseudonyms: list[str]
    names: list[str]
    units: list[str]
    day: str  # a day inside the events' span, YYYY-MM-DD


@dataclass
class PageResult:
    """Timings (ms) and unexpected answers of one page."""

    name: str
    times_ms: list[float] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    missing: bool = False
    errors: list[str] = field(default_factory=list)
    first_ms: float | None = None  # the page's first request after start: nothing warm in the process


# ---- the database ------------------------------------------------------------------------------------------------


def _pg(url: str) -> URL:
    """A PostgreSQL URL with the psycopg (3) driver."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed


def _create_pg_database(url: URL) -> None:
    """Create the URL's database on its server unless it exists."""
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def _drop_pg_database(url: URL) -> None:
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def database(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    """The database URL to run on: reused, a scratch PostgreSQL database, or a SQLite file in `tmp`."""
    if args.reuse and "://" in args.reuse:
        url = _pg(args.reuse)
        _create_pg_database(url)
        yield url.render_as_string(hide_password=False)
    elif args.reuse:
        yield f"sqlite:///{Path(args.reuse).resolve()}"
    elif args.database_url:
        url = _pg(args.database_url).set(database=f"gatehouse_bench_{os.getpid()}")
        _create_pg_database(url)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            _drop_pg_database(url)
    else:
        yield f"sqlite:///{tmp / 'console.db'}"


def prepare(app: Flask, people: int, events: int) -> tuple[float | None, str]:
    """Migrate, seed an empty database and (re)set the admin's password; seeding seconds (None if reused)."""
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        seconds = None
        if console_seed.seeded_people(db.engine) == 0:
            started = time.perf_counter()
            console_seed.seed(db.engine, people, events)
            seconds = time.perf_counter() - started
        db.engine.dispose()  # no seeding connection settings carry over into the run
        password = console_seed.random_token()
        user = db.session.scalar(select(ConsoleUser).where(ConsoleUser.username == ADMIN))
        if user is None:
            users.create_user(db.session, Actor("bench"), ADMIN, password, ConsoleRole.ADMIN)
        else:
            users.set_password(db.session, Actor("bench"), user, password)
        db.session.commit()
        db.session.remove()
    return seconds, password


def pools(app: Flask) -> Pools:
    """Sample ids, names and units to vary requests with."""
    rng = random.Random(7)
    with app.app_context():
        s = db.session
        low, high = s.execute(select(func.min(Person.id), func.max(Person.id))).one()
        wanted = sorted({rng.randint(low, high) for _ in range(300)})
        sample = s.execute(
            select(Person.id, Person.pseudonym, Person.full_name, Person.unit).where(Person.id.in_(wanted))
        )
        rows = sample.all()
        first = s.scalar(select(func.min(AccessEvent.occurred_at))) or utcnow()
        found = Pools(
            sites=list(s.scalars(select(Site.id))),
            doors=list(s.scalars(select(Door.id))),
            terminals=list(s.scalars(select(Terminal.id))),
            person_ids=[r.id for r in rows],
            pseudonyms=[r.pseudonym for r in rows],
            names=[r.full_name for r in rows],
            units=[r.unit for r in rows if r.unit],
            day=(first + (utcnow() - first) / 2).date().isoformat(),
        )
        db.session.remove()
    return found


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        people = db.session.scalar(select(func.count()).select_from(Person)) or 0
        events = db.session.scalar(select(func.count()).select_from(AccessEvent)) or 0
        db.session.remove()
    return people, events


# ---- the pages ---------------------------------------------------------------------------------------------------


def plans(p: Pools) -> list[tuple[str, Callable[[int], str]]]:
    """Each page's name and the URL of its i-th request."""

    def pick(values: list[Any], i: int, salt: int = 0) -> Any:
        return values[(i * 7919 + salt) % len(values)]

    def people_list(i: int) -> str:
        family = pick(p.names, i).split()[0]
        variants = [
            "/people",
            f"/people?q={family}",
            f"/people?q={pick(p.names, i, 1).replace(' ', '+')}",
            f"/people?q={pick(p.units, i) if p.units else family}",
            f"/people?site={pick(p.sites, i)}",
            "/people?kind=staff",
            "/people?status=moved_out",
            f"/people?q={family}&site={pick(p.sites, i, 2)}&status=active",
            "/people?q=nobody-by-this-name",
        ]
        return variants[i % len(variants)]

    def events_page(i: int) -> str:
        variants = [
            "/events",
            f"/events?site={pick(p.sites, i)}",
            f"/events?door={pick(p.doors, i)}",
            f"/events?terminal={pick(p.terminals, i)}",
            "/events?method=face",
            "/events?decision=deny",
            "/events?decision=alarm",
            f"/events?person={pick(p.pseudonyms, i)}",
            f"/events?person={pick(p.names, i, 5).split()[0]}",
            f"/events?date_from={p.day}&date_to={p.day}",
            f"/events?door={pick(p.doors, i, 3)}&decision=deny",
            f"/events?site={pick(p.sites, i, 4)}&method=app_code&date_from={p.day}",
        ]
        return variants[i % len(variants)]

    def audit_page(i: int) -> str:
        variants = [
            "/audit",
            "/audit?action=person.",
            "/audit?action=consent.withdraw",
            "/audit?actor=manager",
            "/audit?target_type=person",
            f"/audit?date_from={p.day}&date_to={p.day}",
        ]
        return variants[i % len(variants)]

    return [
        ("people list", people_list),
        ("person page", lambda i: f"/people/{pick(p.person_ids, i)}"),
        ("events (filtered)", events_page),
        ("dashboard", lambda i: "/"),
        ("audit log", audit_page),
    ]


def log_in(app: Flask, password: str) -> FlaskClient:
    """A client logged in as the admin through the real form."""
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page.text
    )
    if token is None:
        raise SystemExit("the login page has no CSRF token")
    answer = client.post("/login", data={"username": ADMIN, "password": password, "csrf_token": token.group(1)})
    if answer.status_code != 302:
        raise SystemExit(f"could not log in: HTTP {answer.status_code}")
    return client


class SlowSql:
    """Collects statements slower than a threshold, per page, to point at the query to fix."""

    def __init__(self, app: Flask, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms
        self.page = ""
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        ms = (time.perf_counter() - conn.info["bench_started"].pop()) * 1000
        if ms >= self.threshold_ms:
            key = (self.page, " ".join(statement.split()))
            worst, count = self.seen.get(key, (0.0, 0))
            self.seen[key] = (max(worst, ms), count + 1)

    def report(self) -> None:
        """Print the slow statements, slowest first."""
        if not self.seen:
            print(f"no statement took {self.threshold_ms:g} ms or more")
            return
        print(f"statements taking {self.threshold_ms:g} ms or more (page, worst ms, times):")
        for (page, statement), (worst, count) in sorted(self.seen.items(), key=lambda kv: -kv[1][0]):
            print(f"- {page}: {worst:.1f} ms x{count}: {statement[:600]}")


def measure(
    client: FlaskClient, name: str, url_of: Callable[[int], str], requests: int, slow: SlowSql | None
) -> PageResult:
    """Warm up, then time `requests` GETs of a page."""
    result = PageResult(name)
    started = time.perf_counter()
    first = client.get(url_of(0))
    result.first_ms = (time.perf_counter() - started) * 1000
    if first.status_code == 404:
        result.missing = True
        return result
    if slow is not None:
        slow.page = f"{name} (warm-up)"
    for i in range(1, WARMUP):
        client.get(url_of(i))
    for i in range(requests):
        url = url_of(i)
        if slow is not None:
            slow.page = f"{name} {url}"
        started = time.perf_counter()
        answer = client.get(url)
        result.times_ms.append((time.perf_counter() - started) * 1000)
        result.urls.append(url)
        if answer.status_code != 200:
            result.errors.append(f"HTTP {answer.status_code} on {url}")
    return result


def _line(result: PageResult) -> str:
    if result.missing:
        return "missing (404)"
    figures = summary(result.times_ms)
    verdict = "ok" if figures["p95"] <= GOAL_MS else "OVER GOAL"
    errors = f"; {len(result.errors)} errors, first: {result.errors[0]}" if result.errors else ""
    first = f"  first {result.first_ms:7.1f}" if result.first_ms is not None else ""
    return (
        f"p50 {figures['p50']:7.1f}  p95 {figures['p95']:7.1f}  max {figures['max']:7.1f}{first} ms  {verdict}{errors}"
    )


def run(args: argparse.Namespace, url: str, key_dir: Path) -> int:
    """Seed or reuse, measure every page, print the figures; the exit status."""
    config = parse_config(
        ServerConfig, {"mode": "development", "database_url": url, "key_dir": str(key_dir), "log_level": "WARNING"}
    )
    app = create_app(config, keys=load_keys(key_dir))
    seed_s, password = prepare(app, args.people, args.events)
    n_people, n_events = _counts(app)
    client = log_in(app, password)
    pages = plans(pools(app))
    slow = SlowSql(app, args.slow_sql) if args.slow_sql is not None else None
    results = [measure(client, name, url_of, args.requests, slow) for name, url_of in pages]
    with app.app_context():
        db.engine.dispose()
    backend = make_url(url).get_backend_name()
    load = os.getloadavg()[0]  # other work on the machine inflates the figures; say how busy it was
    rows = [
        ("database", backend),
        ("load average (1 min) after the run", f"{load:.1f} on {os.cpu_count()} CPUs"),
        ("people / access events", f"{n_people:,} / {n_events:,}"),
        ("seeding seconds", f"{seed_s:.1f}" if seed_s is not None else "reused"),
        ("requests per page", f"{args.requests} (after {WARMUP} warm-up)"),
        *[(r.name, _line(r)) for r in results],
        ("goal", f"p95 <= {GOAL_MS:g} ms per page"),
    ]
    figures: dict[str, Any] = {
        "database": backend,
        "load_1min": load,
        "people": n_people,
        "events": n_events,
        "seed_s": seed_s,
        "requests": args.requests,
        "pages": {
            r.name: {"missing": True}
            if r.missing
            else {**summary(r.times_ms), "first": r.first_ms, "errors": len(r.errors)}
            for r in results
        },
    }
    # Diagnostics first: the JSON line stays last, as every benchmark's does.
    if slow is not None:
        slow.report()
        print("slowest requests:")
        for r in results:
            worst = sorted(zip(r.times_ms, r.urls, strict=True), reverse=True)[:3]
            print(f"- {r.name}: " + ", ".join(f"{url} {ms:.0f} ms" for ms, url in worst))
    errors = [e for r in results for e in r.errors]
    for error in errors[:20]:
        print(f"error: {error}")
    emit(f"console ({backend})", rows, figures)
    return 1 if errors else 0


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server URL (e.g. postgresql://postgres@127.0.0.1/postgres): a scratch database is "
        "created on it and dropped afterwards; default: SQLite in a temporary directory",
    )
    parser.add_argument(
        "--reuse",
        metavar="PATH_OR_URL",
        help="a SQLite file or PostgreSQL database URL kept between runs; seeded only when it holds no people",
    )
    parser.add_argument("--slow-sql", type=float, metavar="MS", help="list statements taking at least MS ms")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatehouse-console-") as tmp:
        key_dir = Path(tmp) / "keys"
        init_keys(key_dir)
        with database(args, Path(tmp)) as url:
            status = run(args, url, key_dir)
    raise SystemExit(status)


if __name__ == "__main__":
    main()
