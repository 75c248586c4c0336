"""Webhook delivery against a real HTTP receiver (both databases): a receiver down for a while gets every delivery
exactly once by id after it returns, with valid Standard Webhooks signatures, in feed order, across a restart of
the sender on the same database; failing receivers cost one request a round; redirects are not followed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as Verifier

from gatehouse_core.keyring import ServerKeys
from server.app import create_app
from server.extensions import db
from server.link.webhook_sender import KEEP_FINISHED, Backoff, WebhookSender, deliver_due, prune, queue_new
from server.models import DeliveryStatus, Door, FeedKind, Site, Webhook, WebhookDelivery, utcnow
from server.services.integrations import webhooks
from server.services.operations import feed
from tests.conftest import TEST_ACTOR, server_config


@dataclass
class Receiver:
    """A webhook receiver on a free port: answers `status` (503 while "down"), records every request."""

    status: int = 503
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    location: str | None = None
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.requests.append((headers, body))
            if 200 <= state.status < 300:
                state.accepted.append((headers, body))
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/gatehouse"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _items(site: Site, door: Door, topics: list[str]) -> None:
    feed.record(
        db.session,
        [
            feed.NewItem(FeedKind.EVENT, topic, n, site.id, {"id": n, "door_id": door.id, "person": "p-01"})
            for n, topic in enumerate(topics, start=1)
        ],
    )
    db.session.commit()


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _register(keys: ServerKeys, url: str, topics: tuple[str, ...], site: Site | None = None) -> tuple[Webhook, str]:
    hook, secret = webhooks.register(
        db.session, TEST_ACTOR, keys, "Property system", url, topics, site.id if site else None
    )
    db.session.commit()
    return hook, secret


def test_a_receiver_down_for_a_while_gets_everything_once_signed_in_order_across_a_restart(
    app: Flask,
    db_url: str,
    key_dir: Path,
    keys: ServerKeys,
    receiver: Receiver,
    make_site: Callable[..., Site],
    make_door: Callable[..., Door],
) -> None:
    site = make_site()
    door = make_door(site)
    _hook, secret = _register(keys, receiver.url, ("access.granted", "alarm.raised"))
    _items(site, door, ["access.granted", "access.denied", "alarm.raised", "access.granted"])
    clock = Clock()
    sender = WebhookSender(app, clock=clock)
    rounds_down = 0
    for step in range(8):  # down for a while; new items keep arriving
        sender.run_once()
        rounds_down += 1
        if step == 3:
            _items(site, door, ["access.granted", "door.state", "alarm.raised"])
        clock.now += timedelta(minutes=3)
    # One request per round at most while the receiver fails, however large the backlog.
    assert 0 < len(receiver.requests) <= rounds_down and receiver.accepted == []

    # The sender restarts: a new app on the same database continues the outbox.
    restarted = create_app(server_config(db_url, key_dir), keys=keys, testing=True)
    receiver.status = 200
    sender = WebhookSender(restarted, clock=clock)
    for _ in range(20):
        clock.now += timedelta(minutes=15)
        sender.run_once()
    with restarted.app_context():
        db.engine.dispose()

    ids = [headers["webhook-id"] for headers, _body in receiver.accepted]
    assert len(ids) == len(set(ids)) == 5  # three wanted items of the first four, two of the three arriving later
    verifier = Verifier(secret)
    kinds = []
    for headers, body in receiver.accepted:
        document = verifier.verify(body, headers)  # raises unless the signature and timestamp are valid
        kinds.append(document["type"])
        assert headers["content-type"] == "application/json"
    assert kinds == ["access.granted", "alarm.raised", "access.granted", "access.granted", "alarm.raised"]
    # Each retry carried the same id as the first try.
    tried = {headers["webhook-id"] for headers, _body in receiver.requests}
    assert tried == set(ids)
    feed_ids = [int(i.rsplit("_", 1)[1]) for i in ids]
    assert feed_ids == sorted(feed_ids)
    db.session.expire_all()
    rows = list(db.session.scalars(select(WebhookDelivery)))
    assert {row.status for row in rows} == {DeliveryStatus.DELIVERED} and len(rows) == 5
    # Verifying with a wrong secret fails: the signature means something.
    with pytest.raises(Exception, match="signature"):
        Verifier(webhooks.new_secret()).verify(receiver.accepted[0][1], receiver.accepted[0][0])


def test_a_receiver_that_stays_down_is_given_up_after_the_schedule(
    app: Flask, keys: ServerKeys, receiver: Receiver, make_site: Callable[..., Site], make_door: Callable[..., Door]
) -> None:
    site = make_site()
    _register(keys, receiver.url, ("access.granted",))
    _items(site, make_door(site), ["access.granted"] * 3)
    clock = Clock()
    backoff = Backoff((timedelta(seconds=10), timedelta(seconds=60)))
    for _ in range(10):
        queue_new(db.session, clock.now)
        db.session.commit()
        deliver_due(db.session, keys, now=clock.now, backoff=backoff)
        clock.now += timedelta(minutes=5)
    rows = list(db.session.scalars(select(WebhookDelivery)))
    assert {row.status for row in rows} == {DeliveryStatus.FAILED}
    assert len(receiver.requests) == 3  # the first try and two retries, for the whole backlog
    assert all(row.last_error for row in rows)


def test_redirects_are_not_followed(
    app: Flask, keys: ServerKeys, receiver: Receiver, make_site: Callable[..., Site], make_door: Callable[..., Door]
) -> None:
    site = make_site()
    receiver.status, receiver.location = 302, "http://169.254.169.254/latest"
    _register(keys, receiver.url, ("access.granted",))
    _items(site, make_door(site), ["access.granted"])
    queue_new(db.session)
    db.session.commit()
    outcome = deliver_due(db.session, keys)
    assert outcome.delivered == 0 and outcome.retrying == 1
    row = db.session.scalar(select(WebhookDelivery))
    assert row.status is DeliveryStatus.PENDING and row.last_status == 302 and row.attempts == 1


def test_queueing_follows_topics_sites_and_the_cursor_once(
    app: Flask, keys: ServerKeys, make_site: Callable[..., Site], make_door: Callable[..., Door]
) -> None:
    north, south = make_site("north"), make_site("south")
    gate = make_door(north)
    _items(north, gate, ["access.granted"])  # before the webhook existed: not sent
    everything, _ = _register(keys, "https://example.invalid/all", tuple(feed.TOPICS))
    northern, _ = _register(keys, "https://example.invalid/north", ("access.denied",), north)
    off, _ = _register(keys, "https://example.invalid/off", tuple(feed.TOPICS))
    webhooks.set_active(db.session, TEST_ACTOR, off.id, False)
    db.session.commit()
    _items(north, gate, ["access.granted", "access.denied"])
    _items(south, make_door(south), ["access.denied"])
    assert queue_new(db.session) == 4
    db.session.commit()
    # Queueing again, even from a cursor moved back, adds nothing (one row per webhook and item).
    everything.cursor = 0
    assert queue_new(db.session) >= 1
    db.session.commit()
    by_hook: dict[int, int] = {}
    for row in db.session.scalars(select(WebhookDelivery)):
        by_hook[row.webhook_id] = by_hook.get(row.webhook_id, 0) + 1
    assert by_hook == {everything.id: 4, northern.id: 1}


def test_the_loop_delivers_until_stopped(
    app: Flask, keys: ServerKeys, receiver: Receiver, make_site: Callable[..., Site], make_door: Callable[..., Door]
) -> None:
    site = make_site()
    receiver.status = 204
    _register(keys, receiver.url, ("access.granted",))
    _items(site, make_door(site), ["access.granted"] * 2)
    stop = threading.Event()
    sender = WebhookSender(app, interval=0.05)
    thread = threading.Thread(target=sender.run, args=(stop,))
    thread.start()
    try:
        for _ in range(400):  # generous: the loop runs every 50 ms
            if len(receiver.accepted) >= 2:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join()
    assert len({headers["webhook-id"] for headers, _ in receiver.accepted}) == 2


def test_finished_deliveries_are_forgotten_after_a_week(app: Flask, keys: ServerKeys) -> None:
    hook, _ = _register(keys, "https://pms.example/h", ("access.granted",))
    now = utcnow()
    old = now - KEEP_FINISHED - timedelta(minutes=1)
    rows = [
        (1, DeliveryStatus.DELIVERED, old), (2, DeliveryStatus.FAILED, old),
        (3, DeliveryStatus.DELIVERED, now), (4, DeliveryStatus.PENDING, old),
    ]  # fmt: skip
    for feed_id, status, at in rows:
        db.session.add(
            WebhookDelivery(webhook_id=hook.id, feed_id=feed_id, message_id=f"m{feed_id}", status=status,
                            last_attempt_at=at, delivered_at=at if status is DeliveryStatus.DELIVERED else None)
        )  # fmt: skip
    db.session.commit()
    assert prune(db.session, now - KEEP_FINISHED) == 2
    db.session.commit()
    assert sorted(r.feed_id for r in db.session.scalars(select(WebhookDelivery))) == [3, 4]
