"""Webhook delivery from a durable outbox: queue each webhook's new feed items, then POST them signed, with retries.

`queue_new` turns the feed items after each active webhook's cursor (its topics, its site) into delivery rows and
advances the cursor in the same transaction, so a restart neither loses nor repeats an item. `deliver_due` POSTs
the due rows, signed as Standard Webhooks asks (`webhook-id` stays the same on every retry, so a receiver drops a
repeat by it); a 2xx marks a row delivered, anything else retries with backoff and jitter (5 s, 30 s, 2 min,
10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h: about a day) before the row is marked failed.

A receiver gets `timeout` seconds (5) per request and no redirect is followed (a 3xx counts as a failure). When a
delivery to a receiver fails, that receiver's other due rows wait with it for this round instead of each paying
the timeout, so one dead receiver costs each round at most one timeout. Deliveries to one receiver go in feed
order; a receiver that was down gets the backlog in order once it answers again.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from standardwebhooks.webhooks import Webhook as Signer

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import SealError
from server.extensions import db
from server.models import DeliveryStatus, FeedItem, Webhook, WebhookDelivery, utcnow
from server.services.integrations.webhooks import signing_secret
from server.services.operations import feed
from server.services.session import DbSession
from server.state import state

log = logging.getLogger(__name__)

BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
)
TIMEOUT_SECONDS = 5.0
QUEUE_BATCH = 500
DELIVERY_BATCH = 100
USER_AGENT = "Gatehouse-Webhooks/1"
# Finished deliveries are kept this long for the console's counts and an operator's questions, then deleted.
KEEP_FINISHED = timedelta(days=7)
PRUNE_EVERY = timedelta(hours=1)


class Poster(Protocol):
    """Sends one POST; returns the HTTP status, raises OSError (or http.client.HTTPException) when it cannot."""

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int: ...


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST with the standard library: never follows a redirect, reads at most 64 KiB of the answer."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


@dataclass(frozen=True)
class Backoff:
    """When to try a failed delivery again: the schedule's step for the attempt, give or take a fifth."""

    schedule: Sequence[timedelta] = BACKOFF

    def after(self, attempts: int) -> timedelta | None:
        """The wait after `attempts` failed attempts, or None when it is time to give up."""
        if attempts > len(self.schedule):
            return None
        base = self.schedule[attempts - 1]
        jitter = (secrets.randbelow(401) - 200) / 1000  # -20 % .. +20 %
        return base * (1 + jitter)


def message_id(webhook_id: int, feed_id: int) -> str:
    """The Standard Webhooks message id of one feed item for one webhook: the same on every retry."""
    return f"msg_gh{webhook_id}_{feed_id}"


def queue_new(session: DbSession, now: datetime | None = None) -> int:
    """Queue every active webhook's new feed items and advance its cursor (in the caller's transaction); how many."""
    now = now or utcnow()
    insert_fn = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    queued = 0
    for hook in session.scalars(select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id)):
        while True:
            items = feed.items_after(
                session,
                hook.cursor,
                site_ids=None if hook.site_id is None else [hook.site_id],
                topics=hook.topics.split(),
                limit=QUEUE_BATCH,
            )
            if not items:
                break
            # A receiver that is failing gets its new items with its waiting ones, not one timeout each.
            due_at = max(now, _waiting_since(session, hook.id) or now)
            rows = [
                {
                    "webhook_id": hook.id,
                    "feed_id": item.id,
                    "message_id": message_id(hook.id, item.id),
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": due_at,
                }
                for item in items
            ]
            session.execute(
                insert_fn(WebhookDelivery).on_conflict_do_nothing(index_elements=["webhook_id", "feed_id"]), rows
            )
            hook.cursor = items[-1].id
            queued += len(items)
            if len(items) < QUEUE_BATCH:
                break
    return queued


def body_of(item: FeedItem) -> bytes:
    """A delivery's JSON body: the event type, when it happened and the feed item's payload."""
    document = {"type": item.topic, "timestamp": item.at.isoformat(), "data": feed.payload(item)}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Outcome:
    """What one round of deliveries did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _fail(row: WebhookDelivery, now: datetime, backoff: Backoff, error: str, status: int | None) -> bool:
    """Count a failed attempt; True if the row gave up."""
    row.attempts += 1
    row.last_attempt_at = now
    row.last_status = status
    row.last_error = error[:200]
    wait = backoff.after(row.attempts)
    if wait is None:
        row.status = DeliveryStatus.FAILED
        return True
    row.next_attempt_at = now + wait
    return False


def deliver_due(
    session: DbSession,
    keys: ServerKeys,
    post: Poster = http_post,
    *,
    now: datetime | None = None,
    backoff: Backoff | None = None,
    timeout: float = TIMEOUT_SECONDS,
    limit: int = DELIVERY_BATCH,
) -> Outcome:
    """POST the due deliveries of active webhooks, oldest first, and record each result (commits after each)."""
    now = now or utcnow()
    backoff = backoff or Backoff()
    outcome = Outcome()
    due = list(
        session.scalars(
            select(WebhookDelivery)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                Webhook.active.is_(True),
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.webhook_id, WebhookDelivery.feed_id)
            .limit(limit)
        )
    )
    # Receivers that failed this round, with when their failed delivery is tried again (None: it gave up).
    failing: dict[int, datetime | None] = {}
    signers: dict[int, Signer | None] = {}
    for row in due:
        if row.webhook_id in failing:
            # Waits with the receiver's failed delivery, without a request; the attempt counts, so a receiver
            # that stays down gives up its whole backlog after the schedule, not one row a day.
            _skip(row, now, backoff, failing[row.webhook_id], outcome)
            continue
        hook = session.get(Webhook, row.webhook_id)
        item = session.get(FeedItem, row.feed_id)
        if hook is None:
            continue
        if item is None:  # pruned from the feed before it could be delivered
            row.status = DeliveryStatus.FAILED
            row.last_error = "the event is no longer in the feed"
            outcome.failed += 1
            session.commit()
            continue
        if hook.id not in signers:
            signers[hook.id] = _signer(keys, hook)
        signer = signers[hook.id]
        status: int | None = None
        error = ""
        if signer is None:
            error = "the signing secret could not be read"
        else:
            status, error = _send(post, hook.url, row.message_id, body_of(item), signer, timeout)
        if status is not None and 200 <= status < 300:
            row.status = DeliveryStatus.DELIVERED
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status = status
            row.last_error = None
            row.delivered_at = now
            outcome.delivered += 1
        else:
            gave_up = _fail(row, now, backoff, error or f"the receiver answered {status}", status)
            failing[hook.id] = None if gave_up else row.next_attempt_at
            log.info("webhook %d: delivery %s failed (%s)", hook.id, row.message_id, row.last_error)
            outcome.failed += gave_up
            outcome.retrying += not gave_up
        session.commit()
    session.commit()
    return outcome


def _signer(keys: ServerKeys, hook: Webhook) -> Signer | None:
    try:
        return Signer(signing_secret(keys, hook))
    except SealError:
        log.error("webhook %d: its signing secret does not unseal; not delivering", hook.id)
        return None


def _send(post: Poster, url: str, msg_id: str, body: bytes, signer: Signer, timeout: float) -> tuple[int | None, str]:
    """POST one signed delivery: the receiver's status, or None and why it could not be sent."""
    # The signed timestamp is the real time of sending: receivers refuse one more than a few minutes off.
    sent_at = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(msg_id, sent_at, body),
    }
    try:
        return post(url, body, headers, timeout), ""
    except (OSError, http.client.HTTPException) as exc:
        return None, f"could not deliver: {type(exc).__name__}"


def _skip(row: WebhookDelivery, now: datetime, backoff: Backoff, retry_at: datetime | None, outcome: Outcome) -> None:
    """A delivery not sent because its receiver just failed: counted as an attempt, retried with the failed one."""
    gave_up = _fail(row, now, backoff, "not sent: an earlier delivery to this receiver failed", None)
    if not gave_up and retry_at is not None:
        row.next_attempt_at = retry_at
    outcome.failed += gave_up
    outcome.retrying += not gave_up


def _waiting_since(session: DbSession, webhook_id: int) -> datetime | None:
    """When the receiver's waiting (already failed) deliveries are tried next, if any wait."""
    return session.scalar(
        select(WebhookDelivery.next_attempt_at)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.attempts > 0,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
    )


def reset_webhook(session: DbSession, webhook_id: int, now: datetime | None = None) -> int:
    """Make a webhook's waiting deliveries due now (an operator who fixed the receiver); how many."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(next_attempt_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune(session: DbSession, before: datetime) -> int:
    """Delete deliveries that finished (delivered, or given up) before `before`; how many. No commit."""
    result = session.execute(
        delete(WebhookDelivery).where(
            or_(
                and_(WebhookDelivery.status == DeliveryStatus.DELIVERED, WebhookDelivery.delivered_at < before),
                and_(WebhookDelivery.status == DeliveryStatus.FAILED, WebhookDelivery.last_attempt_at < before),
            )
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


class WebhookSender:
    """The delivery loop of the worker process: queue new items and deliver due ones about once a second."""

    def __init__(
        self,
        app: Flask,
        *,
        post: Poster = http_post,
        interval: float = 1.0,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.post = post
        self.interval = interval
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._pruned_at: datetime | None = None

    def run_once(self) -> Outcome:
        """One round: queue, then deliver what is due (and, once an hour, forget old finished deliveries)."""
        with self.app.app_context():
            try:
                now = self.clock()
                if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                    prune(db.session, now - KEEP_FINISHED)
                    self._pruned_at = now
                queue_new(db.session, now)
                db.session.commit()
                return deliver_due(db.session, state().keys, self.post, now=now, backoff=self.backoff)
            finally:
                db.session.remove()

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; a failed round is logged and the next one runs."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:
                log.exception("webhook delivery round failed")
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
