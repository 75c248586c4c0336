"""Webhooks: a manager registers a URL and the feed topics it wants; deliveries are signed with a secret shown once.

The secret has the Standard Webhooks form `whsec_<base64 of 32 random bytes>`. It must be read back to sign, so it
is stored sealed (AES-256-GCM under the server's template key, bound to the webhook's id), never in clear.

URLs: http or https only, with a host, without user name or password (they would sit in the database and the
console in clear; a receiver authenticates deliveries by their signature) and without a fragment. With
`require_https` (the server's production mode) plain http is refused except to the same machine (localhost,
127.0.0.1, ::1), where a local bridge (a Home Assistant add-on, a relay) listens and nothing crosses a network.

A new webhook starts at the newest feed item: it receives what happens from now on, not the history. A disabled
webhook queues nothing and sends nothing; when enabled again it resumes from where it stopped.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.sealed import seal, unseal
from server.models import DeliveryStatus, Webhook, WebhookDelivery
from server.services import audit
from server.services.audit import Actor
from server.services.errors import NotFound, RuleViolation
from server.services.integrations.api_keys import check_site
from server.services.operations import feed
from server.services.session import DbSession

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105  (the format's marker, not a secret)
SECRET_BYTES = 32
NAME_MAX = 120
URL_MAX = 500
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class WebhookSummary:
    """A webhook with how its deliveries stand, for the console and the CLI."""

    webhook: Webhook
    last_delivered_at: datetime | None
    pending: int
    failed: int
    last_error: str | None
    last_status: int | None


def secret_context(webhook_id: int) -> str:
    """Associated data that binds a sealed signing secret to its webhook."""
    return f"webhook_secret:webhook={webhook_id}"


def check_url(url: str, *, require_https: bool) -> str:
    """The URL, stripped; RuleViolation if a delivery should not go there (see the module's rules)."""
    url = url.strip()
    if not url or len(url) > URL_MAX:
        raise RuleViolation(f"Give the receiver's URL (at most {URL_MAX} characters).", code="bad_url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        raise RuleViolation("That is not a URL.", code="bad_url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise RuleViolation("The URL must start with https:// (or http://) and name a host.", code="bad_url")
    if parts.username is not None or parts.password is not None:
        raise RuleViolation(
            "Leave the user name and password out of the URL; receivers check the signature instead.",
            code="url_credentials",
        )
    if parts.fragment:
        raise RuleViolation("Leave the #fragment out of the URL.", code="bad_url")
    if require_https and parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise RuleViolation("Use https:// (plain http only to this machine).", code="https_required")
    return url


def check_topics(topics: Iterable[str]) -> list[str]:
    """The feed topics, de-duplicated in the canonical order; RuleViolation if none or one is unknown."""
    wanted = {topic.strip() for topic in topics if topic.strip()}
    unknown = sorted(wanted - set(feed.TOPICS))
    if unknown:
        raise RuleViolation(
            f"Unknown event kind {', '.join(unknown)}; choose from {', '.join(feed.TOPICS)}.", code="unknown_topic"
        )
    if not wanted:
        raise RuleViolation("Choose at least one kind of event to send.", code="no_topic")
    return [topic for topic in feed.TOPICS if topic in wanted]


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _seal_secret(keys: ServerKeys, webhook: Webhook, secret: str) -> None:
    sealed = seal(keys.template_key, secret.encode(), secret_context(webhook.id))
    webhook.secret_sealed = base64.b64encode(sealed).decode()


def signing_secret(keys: ServerKeys, webhook: Webhook) -> str:
    """The webhook's signing secret, unsealed (SealError if it was tampered with or moved to another row)."""
    return unseal(keys.template_key, base64.b64decode(webhook.secret_sealed), secret_context(webhook.id)).decode()


def register(
    session: DbSession,
    actor: Actor,
    keys: ServerKeys,
    name: str,
    url: str,
    topics: Iterable[str],
    site_id: int | None = None,
    *,
    require_https: bool = True,
) -> tuple[Webhook, str]:
    """A new webhook and its signing secret, shown this once; audited (without the secret)."""
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise RuleViolation(f"Name the webhook (at most {NAME_MAX} characters).", code="name_required")
    url = check_url(url, require_https=require_https)
    chosen = check_topics(topics)
    check_site(session, site_id)
    webhook = Webhook(
        name=name,
        url=url,
        topics=" ".join(chosen),
        site_id=site_id,
        secret_sealed="",  # nosec B106  (sealed below, once the id that binds it exists)
        cursor=feed.latest_id(session),
        active=True,
        created_by=actor.label,
    )
    session.add(webhook)
    session.flush()  # the id binds the sealed secret
    secret = new_secret()
    _seal_secret(keys, webhook, secret)
    audit.record(
        session,
        actor,
        "webhook.registered",
        "webhook",
        webhook.id,
        site_id=site_id,
        details={"name": name, "url": url, "topics": chosen},
    )
    return webhook, secret


def get(session: DbSession, webhook_id: int) -> Webhook:
    """The webhook, or NotFound."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound("There is no such webhook.")
    return webhook


def set_active(session: DbSession, actor: Actor, webhook_id: int, active: bool) -> Webhook:
    """Enable or disable a webhook; audited when it changes."""
    webhook = get(session, webhook_id)
    if webhook.active != active:
        webhook.active = active
        audit.record(
            session,
            actor,
            "webhook.enabled" if active else "webhook.disabled",
            "webhook",
            webhook.id,
            site_id=webhook.site_id,
            details={"name": webhook.name},
        )
    return webhook


def rotate_secret(session: DbSession, actor: Actor, keys: ServerKeys, webhook_id: int) -> tuple[Webhook, str]:
    """A new signing secret (shown once); deliveries from now on, retries included, are signed with it."""
    webhook = get(session, webhook_id)
    secret = new_secret()
    _seal_secret(keys, webhook, secret)
    audit.record(session, actor, "webhook.secret_rotated", "webhook", webhook.id, site_id=webhook.site_id, details={})
    return webhook, secret


def delete(session: DbSession, actor: Actor, webhook_id: int) -> None:
    """Remove a webhook and its outbox; audited."""
    webhook = get(session, webhook_id)
    audit.record(
        session,
        actor,
        "webhook.deleted",
        "webhook",
        webhook.id,
        site_id=webhook.site_id,
        details={"name": webhook.name, "url": webhook.url},
    )
    session.execute(sql_delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    session.delete(webhook)


def summaries(session: DbSession) -> Sequence[WebhookSummary]:
    """Every webhook, newest first, with its last delivery, pending and failed counts and latest error."""
    hooks = list(session.scalars(select(Webhook).order_by(Webhook.id.desc())))
    if not hooks:
        return []
    ids = [hook.id for hook in hooks]
    delivered = dict(
        session.execute(
            select(WebhookDelivery.webhook_id, func.max(WebhookDelivery.delivered_at))
            .where(WebhookDelivery.webhook_id.in_(ids))
            .group_by(WebhookDelivery.webhook_id)
        ).all()
    )
    counts: dict[tuple[int, DeliveryStatus], int] = {
        (row[0], row[1]): row[2]
        for row in session.execute(
            select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
            .where(
                WebhookDelivery.webhook_id.in_(ids),
                WebhookDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            )
            .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status)
        ).all()
    }
    latest_attempt = (
        select(func.max(WebhookDelivery.id))
        .where(WebhookDelivery.webhook_id.in_(ids), WebhookDelivery.last_attempt_at.is_not(None))
        .group_by(WebhookDelivery.webhook_id)
    )
    last = {
        row.webhook_id: row
        for row in session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(latest_attempt)))
    }
    return [
        WebhookSummary(
            webhook=hook,
            last_delivered_at=delivered.get(hook.id),
            pending=counts.get((hook.id, DeliveryStatus.PENDING), 0),
            failed=counts.get((hook.id, DeliveryStatus.FAILED), 0),
            last_error=last[hook.id].last_error if hook.id in last else None,
            last_status=last[hook.id].last_status if hook.id in last else None,
        )
        for hook in hooks
    ]
