"""Server time of the phone-app API's calls with 100,000 people and 1,000,000 access events.

    python -m bench.mobile_api [--people 100000] [--events 1000000] [--residents 200] [--requests 50]
                               [--database-url URL] [--reuse PATH_OR_URL]

Seeds the same database as bench.console (SQLite in a temporary directory by default; --database-url makes a
scratch PostgreSQL database and drops it afterwards; --reuse keeps one between runs), turns the app on for
--residents residents picked at random, gives each a visitor pass, and times --requests calls of each API
operation, each call made as a different resident with their own access token. Calls run in process, so the
time around each is server time: token check, session lookup, queries, JSON, no network. Sign-in is timed
separately: it is dominated by Argon2id on purpose. The goal is a p95 of at most 100 ms per call (sign-in and
the data export excepted); any unexpected status makes the run exit non-zero. Rate limits are off for the run.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, make_url, select

from bench.console import database, prepare
from bench.report import emit, summary
from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import ServerKeys, init_keys, load_keys
from mobile_api.app import create_app as create_mobile_app
from mobile_api.config import MobileApiConfig
from server.app import create_app
from server.config import ServerConfig
from server.extensions import db
from server.models import AccessEvent, Person, PersonKind, PersonStatus, ResidentAccount, utcnow
from server.services.access import access
from server.services.accounts import app_accounts, app_sessions
from server.services.audit import Actor

GOAL_MS = 100.0
WARMUP = 3
PASSWORD = "bench password 0123"  # noqa: S105 - a throwaway account of the benchmark database
ACTOR = Actor("bench")


@dataclass
class Caller:
    """One resident of the run: their token and a pass of theirs."""

    person_id: int
    login: str
    headers: dict[str, str]
    refresh: str
    pass_id: int
    door_ids: list[int]


@dataclass
class CallResult:
    """Timings (ms) and unexpected answers of one operation."""

    name: str
    times_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def residents(app: Flask, keys: ServerKeys, count: int) -> list[Caller]:
    """Turn the app on for `count` random active residents with doors, each with a token and a pass."""
    rng = random.Random(11)
    callers: list[Caller] = []
    key = app_sessions.access_key(keys.session_secret)
    with app.app_context():
        s = db.session
        low, high = s.execute(select(func.min(Person.id), func.max(Person.id))).one()
        tried: set[int] = set()
        while len(callers) < count and len(tried) < 50 * count:
            person_id = rng.randint(low, high)
            if person_id in tried:
                continue
            tried.add(person_id)
            person = s.get(Person, person_id)
            if person is None or person.kind is not PersonKind.RESIDENT or person.status is not PersonStatus.ACTIVE:
                continue
            doors = sorted(access.allowed_doors(person))
            if not doors:
                continue
            account = app_accounts.account_of(s, person) or app_accounts.enable_account(
                s, ACTOR, person, username=f"bench{person.id}", password=PASSWORD if not callers else None
            )
            issued = app_sessions.start_session(s, key, account, app_sessions.TokenPolicy(), how="bench")
            s.commit()
            callers.append(
                Caller(
                    person.id,
                    account.username or "",
                    {"Authorization": f"Bearer {issued.access_token}"},
                    issued.refresh_token,
                    0,
                    doors[:2],
                )
            )
        db.session.remove()
    return callers


def pass_body(caller: Caller, i: int) -> dict[str, Any]:
    """A valid pass request for this caller."""
    start = utcnow().replace(microsecond=0) + timedelta(minutes=5)
    return {
        "visitor_name": f"Visitor {i}",
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(hours=4)).isoformat(),
        "door_ids": caller.door_ids,
        "uses": 2,
    }


def give_passes(client: FlaskClient, callers: list[Caller]) -> None:
    """One pass per caller, made through the API (so the passes list and pass events have something)."""
    for i, caller in enumerate(callers):
        answer = client.post("/api/v1/passes", json=pass_body(caller, i), headers=caller.headers)
        if answer.status_code != 201:
            raise SystemExit(f"could not create a pass: HTTP {answer.status_code} {answer.get_data(as_text=True)}")
        caller.pass_id = answer.get_json()["pass"]["id"]


Call = Callable[[FlaskClient, Caller, int], Any]


def operations() -> list[tuple[str, int, Call]]:
    """Each timed operation: name, expected status and how to make the i-th call."""

    def refresh(client: FlaskClient, caller: Caller, i: int) -> Any:
        answer = client.post("/api/v1/auth/refresh", json={"refresh_token": caller.refresh})
        if answer.status_code == 200:
            body = answer.get_json()
            caller.refresh = body["refresh_token"]
            caller.headers = {"Authorization": f"Bearer {body['access_token']}"}
        return answer

    return [
        ("GET /me", 200, lambda c, r, i: c.get("/api/v1/me", headers=r.headers)),
        ("GET /me/credentials", 200, lambda c, r, i: c.get("/api/v1/me/credentials", headers=r.headers)),
        ("GET /me/doors", 200, lambda c, r, i: c.get("/api/v1/me/doors", headers=r.headers)),
        ("GET /me/events", 200, lambda c, r, i: c.get("/api/v1/me/events", headers=r.headers)),
        ("GET /me/face", 200, lambda c, r, i: c.get("/api/v1/me/face", headers=r.headers)),
        ("GET /me/erasure-receipts", 200, lambda c, r, i: c.get("/api/v1/me/erasure-receipts", headers=r.headers)),
        ("GET /passes", 200, lambda c, r, i: c.get("/api/v1/passes", headers=r.headers)),
        (
            "GET /passes/{id}/events",
            200,
            lambda c, r, i: c.get(f"/api/v1/passes/{r.pass_id}/events", headers=r.headers),
        ),
        ("POST /passes", 201, lambda c, r, i: c.post("/api/v1/passes", json=pass_body(r, i), headers=r.headers)),
        ("POST /auth/refresh", 200, refresh),
        ("GET /me/export (report)", 200, lambda c, r, i: c.get("/api/v1/me/export", headers=r.headers)),
    ]


def measure(client: FlaskClient, callers: list[Caller], name: str, expected: int, call: Call, n: int) -> CallResult:
    """Warm up, then time `n` calls, each as another resident."""
    result = CallResult(name)
    for i in range(WARMUP):
        call(client, callers[(i * 31) % len(callers)], i)
    for i in range(n):
        caller = callers[(i * 7919) % len(callers)]
        started = time.perf_counter()
        answer = call(client, caller, i)
        result.times_ms.append((time.perf_counter() - started) * 1000)
        if answer.status_code != expected:
            result.errors.append(f"{name}: HTTP {answer.status_code} {answer.get_data(as_text=True)[:200]}")
    return result


def measure_sign_in(client: FlaskClient, login: str, n: int) -> CallResult:
    """Password sign-in of one resident (Argon2id dominates)."""
    result = CallResult("POST /auth/login (Argon2id)")
    for i in range(n + WARMUP):
        started = time.perf_counter()
        answer = client.post("/api/v1/auth/login", json={"login": login, "password": PASSWORD})
        if i >= WARMUP:
            result.times_ms.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                result.errors.append(f"sign-in: HTTP {answer.status_code}")
    return result


def _line(result: CallResult, goal: bool) -> str:
    figures = summary(result.times_ms)
    verdict = ("ok" if figures["p95"] <= GOAL_MS else "OVER GOAL") if goal else "(no goal)"
    errors = f"; {len(result.errors)} errors" if result.errors else ""
    return f"p50 {figures['p50']:7.1f}  p95 {figures['p95']:7.1f}  max {figures['max']:7.1f} ms  {verdict}{errors}"


def run(args: argparse.Namespace, url: str, key_dir: Path) -> int:
    """Seed or reuse, measure every operation, print the figures; the exit status."""
    server_config = parse_config(
        ServerConfig, {"mode": "development", "database_url": url, "key_dir": str(key_dir), "log_level": "WARNING"}
    )
    app = create_app(server_config, keys=load_keys(key_dir))
    seed_s, _ = prepare(app, args.people, args.events)
    mobile_config = parse_config(
        MobileApiConfig,
        {"database_url": url, "key_dir": str(key_dir), "log_level": "WARNING", "rate_limits": {"enabled": False}},
    )
    keys = load_keys(key_dir)
    mobile = create_mobile_app(mobile_config, keys=keys)
    callers = residents(app, keys, args.residents)
    client = mobile.test_client()
    give_passes(client, callers)
    results = [
        (measure(client, callers, name, expected, call, args.requests), "export" not in name)
        for name, expected, call in operations()
    ]
    results.append((measure_sign_in(client, callers[0].login, max(10, args.requests // 5)), False))
    with app.app_context():
        n_people = db.session.scalar(select(func.count()).select_from(Person)) or 0
        n_events = db.session.scalar(select(func.count()).select_from(AccessEvent)) or 0
        n_accounts = db.session.scalar(select(func.count()).select_from(ResidentAccount)) or 0
        db.session.remove()
        db.engine.dispose()
    with mobile.app_context():
        db.engine.dispose()
    backend = make_url(url).get_backend_name()
    load = os.getloadavg()[0]
    rows = [
        ("database", backend),
        ("load average (1 min) after the run", f"{load:.1f} on {os.cpu_count()} CPUs"),
        ("people / access events / app accounts", f"{n_people:,} / {n_events:,} / {n_accounts:,}"),
        ("seeding seconds", f"{seed_s:.1f}" if seed_s is not None else "reused"),
        ("calls per operation", f"{args.requests} (after {WARMUP} warm-up), each as another resident"),
        *[(r.name, _line(r, goal)) for r, goal in results],
        ("goal", f"p95 <= {GOAL_MS:g} ms per call (sign-in and export excepted)"),
    ]
    figures: dict[str, Any] = {
        "database": backend,
        "load_1min": load,
        "people": n_people,
        "events": n_events,
        "accounts": n_accounts,
        "seed_s": seed_s,
        "requests": args.requests,
        "calls": {r.name: {**summary(r.times_ms), "errors": len(r.errors)} for r, _ in results},
    }
    errors = [e for r, _ in results for e in r.errors]
    for error in errors[:20]:
        print(f"error: {error}")
    emit(f"mobile API ({backend})", rows, figures)
    return 1 if errors else 0


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--residents", type=int, default=200, help="residents signed in for the run")
    parser.add_argument("--requests", type=int, default=50, help="timed calls per operation")
    parser.add_argument("--database-url", help="a PostgreSQL server URL: a scratch database is made and dropped")
    parser.add_argument("--reuse", help="a SQLite file or PostgreSQL URL kept between runs (seeded when empty)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
        key_dir = Path(tmp) / "keys"
        init_keys(key_dir)
        with database(args, Path(tmp)) as url:
            raise SystemExit(run(args, url, key_dir))


if __name__ == "__main__":
    main()
