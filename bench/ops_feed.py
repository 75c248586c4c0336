"""The operations screen under load: 200 doors, 50 access events a second, several guards' screens streaming.

    python -m bench.ops_feed [--doors 200] [--rate 50] [--seconds 20] [--clients 4]

Events arrive through the worker's real ingest function (`--batch` events per transaction, at an even rate,
each written to the feed in its transaction), on SQLite with WAL as the demo and small sites run. `--clients`
guards' browsers read /operations/stream in this process through the app (the real view, polling the feed
every 0.25 s in short sessions, rendering each row with the page's macros); everything around a request is
server work. Figures: the time from an event's commit (its start) to its row reaching each screen (p50/p95), the server
CPU seconds spent streaming (the client threads run the server's generator) per update delivered, the
ingest's CPU, and the backlog (newest stored feed id minus the last id each screen received), sampled every
0.2 s; after the arrivals stop, how long until every screen has every event. Goal: the feed keeps up (the
backlog stays within one poll's worth of events and drains to zero; nothing missed or delivered twice).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bench.report import emit, summary
from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import init_keys, load_keys
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.app import create_app
from server.config import ServerConfig
from server.console.operations.routes import SETTINGS_KEY
from server.console.operations.stream import Settings
from server.extensions import db
from server.link import event_ingest
from server.models import ConsoleRole, Door, utcnow
from server.services.access import sites
from server.services.accounts import users
from server.services.audit import Actor
from server.services.operations import feed
from server.services.terminals import terminals

ACTOR = Actor("bench")
PASSWORD = secrets.token_urlsafe(16)  # the guards' password, for this run only
DOORS_PER_TERMINAL = 10
SAMPLE_EVERY = 0.2
_ID = re.compile(r"^id: (\d+)$", re.MULTILINE)
_EVENT_ID = re.compile(r"^id: (\d+)\nevent: access$", re.MULTILINE)


@dataclass
class Screen:
    """One guard's browser: what it received and when."""

    client: FlaskClient
    received: dict[int, float] = field(default_factory=dict)  # feed id -> monotonic time it arrived
    duplicates: int = 0
    last_id: int = 0
    cpu: float = 0.0  # thread CPU seconds: the server's stream generator and the little parsing done here


def seed(app: Flask, doors: int, screens: int) -> tuple[list[event_ingest.Sender], list[str]]:
    """A site with `doors` doors, one terminal per ten doors, and `screens` guards; the terminals as event
    senders and the guards' names."""
    with app.app_context():
        site = sites.create_site(db.session, ACTOR, code="bench", name="Operations bench")
        made = [sites.save_door(db.session, ACTOR, site, f"Door {i:03d}", sites.DoorMethods()) for i in range(doors)]
        db.session.commit()
        senders = []
        for start in range(0, doors, DOORS_PER_TERMINAL):
            group: list[Door] = made[start : start + DOORS_PER_TERMINAL]
            terminal = terminals.provision_terminal(db.session, ACTOR, site, f"T{start // 10}", group).terminal
            db.session.commit()
            senders.append(event_ingest.sender_of(db.session, terminal))
        guards = [f"guard{i}" for i in range(screens)]
        for name in guards:
            users.create_user(db.session, ACTOR, name, PASSWORD, ConsoleRole.GUARD)
        db.session.commit()
        db.session.remove()
    return senders, guards


def log_in(app: Flask, username: str) -> FlaskClient:
    """A client logged in through the real form."""
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    if token is None:
        raise SystemExit("the login page has no CSRF token")
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    if answer.status_code != 302:
        raise SystemExit(f"could not log in: HTTP {answer.status_code}")
    return client


def watch(screen: Screen, after: int, stop: threading.Event) -> None:
    """Read the stream until `stop`, noting when each event arrives."""
    answer = screen.client.get(f"/operations/stream?after={after}", buffered=False)
    assert answer.status_code == 200, answer.status_code
    chunks: Iterator[bytes] = iter(answer.response)  # type: ignore[arg-type]
    started = time.thread_time()
    try:
        for chunk in chunks:
            now = time.monotonic()
            text = chunk.decode()
            for found in _EVENT_ID.finditer(text):
                feed_id = int(found.group(1))
                if feed_id in screen.received:
                    screen.duplicates += 1
                screen.received.setdefault(feed_id, now)
            ids = _ID.findall(text)
            if ids:
                screen.last_id = max(screen.last_id, int(ids[-1]))
            if stop.is_set():
                break
    finally:
        answer.close()
        screen.cpu = time.thread_time() - started


def arrive(
    app: Flask, senders: list[event_ingest.Sender], rate: float, seconds: float, batch: int, out: dict[str, Any]
) -> None:
    """Store `rate` events a second for `seconds` through the real ingest, `batch` events a transaction (as the
    worker stores what arrived since its last write); note when each feed id's transaction began committing."""
    rng = random.Random(20)
    stored: dict[int, float] = {}
    started_cpu = time.thread_time()
    with app.app_context():
        begin = next_at = time.monotonic()
        while next_at - begin < seconds:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            batches = []
            for _ in range(batch):
                sender = rng.choice(senders)
                record = EventRecord(
                    uid=str(uuid.uuid4()),
                    door=rng.choice(sorted(sender.doors)),
                    method=EntryMethod.CARD,
                    decision=Decision.GRANT if rng.random() < 0.9 else Decision.DENY,
                    reason="granted",
                    person=f"p-{rng.getrandbits(64):016x}",
                    at=utcnow(),
                )
                batches.append((sender, [record]))
            before = feed.latest_id(db.session)
            event_ingest.ingest(db.session, batches)
            committing = time.monotonic()  # a screen may read the rows as soon as the commit ends
            db.session.commit()
            for item in feed.items_after(db.session, before, limit=batch + 10):
                stored[item.id] = committing
            db.session.rollback()
            next_at += batch / rate
        db.session.remove()
    out["stored"] = stored
    out["cpu"] = time.thread_time() - started_cpu
    out["seconds"] = time.monotonic() - begin


def run(app: Flask, doors: int, rate: float, seconds: float, clients: int, batch: int) -> dict[str, Any]:
    """Seed, stream to `clients` screens while events arrive, and measure."""
    senders, guards = seed(app, doors, clients)
    app.config[SETTINGS_KEY] = Settings(lifetime=seconds + 120)
    screens = [Screen(log_in(app, name)) for name in guards]
    with app.app_context():
        start_id = feed.latest_id(db.session)
        db.session.remove()
    stop = threading.Event()
    readers = [threading.Thread(target=watch, args=(s, start_id, stop), daemon=True) for s in screens]
    for reader in readers:
        reader.start()
    time.sleep(0.5)  # every screen connected
    arrivals: dict[str, Any] = {}
    cpu_before = time.process_time()
    producer = threading.Thread(target=arrive, args=(app, senders, rate, seconds, batch, arrivals))
    producer.start()
    backlog: list[int] = []
    while producer.is_alive():
        time.sleep(SAMPLE_EVERY)
        with app.app_context():
            newest = feed.latest_id(db.session)
            db.session.remove()
        backlog.append(max(0, newest - min(s.last_id for s in screens)))
    producer.join()
    stored: dict[int, float] = arrivals["stored"]
    last = max(stored)
    drain_start = time.monotonic()
    while min(s.last_id for s in screens) < last and time.monotonic() - drain_start < 30:
        time.sleep(0.01)
    drained = time.monotonic() - drain_start
    stop.set()
    with app.app_context():  # one more item wakes every stream, so each sees the stop and ends
        event_ingest.ingest(
            db.session,
            [
                (
                    senders[0],
                    [
                        EventRecord(
                            uid=str(uuid.uuid4()),
                            door=min(senders[0].doors),
                            method=EntryMethod.CARD,
                            decision=Decision.GRANT,
                            reason="granted",
                            at=utcnow(),
                        )
                    ],
                )
            ],
        )
        db.session.commit()
        db.session.remove()
    for reader in readers:
        reader.join(10)
    process_cpu = time.process_time() - cpu_before
    latencies = [
        (screen.received[i] - at) * 1000 for screen in screens for i, at in stored.items() if i in screen.received
    ]
    missing = sum(1 for screen in screens for i in stored if i not in screen.received)
    delivered = sum(1 for screen in screens for i in stored if i in screen.received)
    stream_cpu = sum(screen.cpu for screen in screens)
    return {
        "doors": doors,
        "clients": clients,
        "batch": batch,
        "events": len(stored),
        "seconds": arrivals["seconds"],
        "rate": len(stored) / arrivals["seconds"],
        "delivered": delivered,
        "missing": missing,
        "duplicates": sum(s.duplicates for s in screens),
        "latency_ms": summary(latencies) if latencies else None,
        "stream_cpu_s": stream_cpu,
        "stream_cpu_ms_per_update": stream_cpu * 1000 / delivered if delivered else None,
        "ingest_cpu_s": arrivals["cpu"],
        "process_cpu_s": process_cpu,
        "process_cpu_share": process_cpu / arrivals["seconds"],
        "backlog_max": max(backlog, default=0),
        "backlog_p95": summary([float(b) for b in backlog])["p95"] if backlog else 0,
        "drain_s": drained,
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doors", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="access events a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long events arrive")
    parser.add_argument("--clients", type=int, default=4, help="operations screens streaming at once")
    parser.add_argument("--batch", type=int, default=5, help="events stored per transaction (the worker's batches)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatehouse-ops-feed-") as tmp:
        key_dir = Path(tmp) / "keys"
        init_keys(key_dir)
        url = f"sqlite:///{Path(tmp) / 'gatehouse.db'}"
        config = parse_config(
            ServerConfig, {"mode": "development", "database_url": url, "key_dir": str(key_dir), "log_level": "WARNING"}
        )
        app = create_app(config, keys=load_keys(key_dir))
        with app.app_context():
            db.create_all()
        try:
            figures = run(app, args.doors, args.rate, args.seconds, args.clients, args.batch)
        finally:
            with app.app_context():
                db.engine.dispose()
    per_poll = args.rate * Settings().poll
    keeps_up = figures["missing"] == 0 and figures["duplicates"] == 0 and figures["backlog_p95"] <= 2 * per_poll + 1
    latency = figures["latency_ms"]
    emit(
        "ops_feed",
        [
            ("doors / screens / events per commit", f"{figures['doors']} / {figures['clients']} / {figures['batch']}"),
            ("events stored, rate", f"{figures['events']:,} in {figures['seconds']:.1f} s ({figures['rate']:.1f}/s)"),
            (
                "rows delivered (all screens)",
                f"{figures['delivered']:,}, missing {figures['missing']}, twice {figures['duplicates']}",
            ),
            (
                "commit -> screen, ms",
                f"p50 {latency['p50']:.0f}  p95 {latency['p95']:.0f}  max {latency['max']:.0f}" if latency else "n/a",
            ),
            (
                "server CPU streaming",
                f"{figures['stream_cpu_s']:.2f} s, {figures['stream_cpu_ms_per_update']:.2f} ms per row delivered",
            ),
            (
                "ingest CPU",
                f"{figures['ingest_cpu_s']:.2f} s ({figures['ingest_cpu_s'] * 1000 / figures['events']:.2f}"
                " ms an event)",
            ),
            ("process CPU", f"{figures['process_cpu_s']:.2f} s ({figures['process_cpu_share']:.0%} of one core)"),
            ("backlog (ids behind)", f"p95 {figures['backlog_p95']:.0f}  max {figures['backlog_max']}"),
            ("drained after arrivals stopped", f"{figures['drain_s']:.2f} s"),
            ("load average (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"),
            (
                "goal",
                "keeps up: nothing missed or twice, backlog within about one poll's events (met)"
                if keeps_up
                else "keeps up: NOT MET",
            ),
        ],
        {**figures, "keeps_up": keeps_up},
    )


if __name__ == "__main__":
    main()
