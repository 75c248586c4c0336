"""Webhooks: URLs checked, secrets in the Standard Webhooks form shown once and kept sealed, summaries of the
outbox, every change audited (both databases)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import SealError
from server.extensions import db
from server.models import AuditEntry, DeliveryStatus, FeedKind, Site, Webhook, WebhookDelivery, utcnow
from server.services.errors import RuleViolation
from server.services.integrations import webhooks
from server.services.operations import feed
from tests.conftest import TEST_ACTOR


def _register(keys: ServerKeys, url: str = "https://pms.example/hook", **kw: object) -> tuple[Webhook, str]:
    hook, secret = webhooks.register(db.session, TEST_ACTOR, keys, "PMS", url, ["access.granted"], **kw)  # type: ignore[arg-type]
    db.session.commit()
    return hook, secret


def test_the_secret_is_standard_shown_once_and_sealed(app: Flask, keys: ServerKeys) -> None:
    feed.record(db.session, [feed.NewItem(FeedKind.EVENT, "access.granted", 1, None, {})])
    hook, secret = _register(keys)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret not in hook.secret_sealed and webhooks.signing_secret(keys, hook) == secret
    assert hook.cursor == feed.latest_id(db.session) > 0  # what happened before is not sent
    other, _ = _register(keys, "https://other.example/hook")
    other.secret_sealed = hook.secret_sealed  # a sealed secret moved to another row does not open
    with pytest.raises(SealError):
        webhooks.signing_secret(keys, other)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "webhook.registered"))
    assert secret not in str(entry.details) and entry.details["topics"] == ["access.granted"]
    _, rotated = webhooks.rotate_secret(db.session, TEST_ACTOR, keys, hook.id)
    assert rotated != secret and webhooks.signing_secret(keys, hook) == rotated


@pytest.mark.parametrize(
    ("url", "require_https", "code"),
    [
        ("ftp://pms.example/hook", False, "bad_url"),
        ("https://", False, "bad_url"),
        ("https://user:pw@pms.example/hook", False, "url_credentials"),
        ("https://token@pms.example/hook", False, "url_credentials"),
        ("https://pms.example/hook#x", False, "bad_url"),
        ("https://pms.example:99999/hook", False, "bad_url"),
        ("http://pms.example/hook", True, "https_required"),
        ("", False, "bad_url"),
    ],
)
def test_bad_urls_are_refused(app: Flask, keys: ServerKeys, url: str, require_https: bool, code: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        _register(keys, url, require_https=require_https)
    assert refused.value.code == code


@pytest.mark.parametrize("url", ["http://localhost:8123/api/webhook/x", "http://127.0.0.1/h", "http://[::1]:9/h"])
def test_plain_http_only_to_this_machine_in_production(app: Flask, keys: ServerKeys, url: str) -> None:
    hook, _ = _register(keys, url, require_https=True)
    assert hook.url == url


def test_topics_are_checked(app: Flask, keys: ServerKeys) -> None:
    with pytest.raises(RuleViolation, match="Unknown"):
        webhooks.register(db.session, TEST_ACTOR, keys, "PMS", "https://a.example", ["card.read"])
    with pytest.raises(RuleViolation):
        webhooks.register(db.session, TEST_ACTOR, keys, "PMS", "https://a.example", [])


def test_summaries_disable_and_delete(app: Flask, keys: ServerKeys, make_site: Callable[..., Site]) -> None:
    hook, _ = _register(keys, site_id=make_site().id)
    now = utcnow()
    for feed_id, status in ((1, DeliveryStatus.DELIVERED), (2, DeliveryStatus.FAILED), (3, DeliveryStatus.PENDING)):
        db.session.add(
            WebhookDelivery(
                webhook_id=hook.id, feed_id=feed_id, message_id=f"m{feed_id}", status=status, attempts=1,
                last_attempt_at=now, last_status=503 if feed_id > 1 else 200,
                last_error=None if feed_id == 1 else "the receiver answered 503",
                delivered_at=now if feed_id == 1 else None,
            )
        )  # fmt: skip
    db.session.commit()
    [summary] = webhooks.summaries(db.session)
    assert (summary.pending, summary.failed, summary.last_delivered_at) == (1, 1, now)
    assert summary.last_error == "the receiver answered 503" and summary.last_status == 503
    webhooks.set_active(db.session, TEST_ACTOR, hook.id, False)
    webhooks.delete(db.session, TEST_ACTOR, hook.id)
    db.session.commit()
    assert db.session.scalar(select(Webhook)) is None and db.session.scalar(select(WebhookDelivery)) is None
    actions = [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-3:] == ["webhook.registered", "webhook.disabled", "webhook.deleted"]
