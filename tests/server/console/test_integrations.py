"""Console: Administration → Integrations: managers create and revoke API keys and register webhooks; the key and
the secret are shown once; guards cannot reach the page."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from server.extensions import db
from server.models import ApiKey, ConsoleRole, ConsoleUser, DeliveryStatus, Site, Webhook, WebhookDelivery, utcnow
from server.services.integrations import api_keys, webhooks
from tests.conftest import csrf_token, login


def _manager(client: FlaskClient, make_user: Callable[..., ConsoleUser]) -> str:
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    page = client.get("/integrations")
    assert page.status_code == 200
    return csrf_token(page.text)


def test_guards_cannot_open_the_page(client: FlaskClient, make_user: Callable[..., ConsoleUser]) -> None:
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    assert client.get("/integrations").status_code == 403
    assert 'href="/integrations"' not in client.get("/dashboard").text


def test_managers_find_it_in_the_menu(client: FlaskClient, make_user: Callable[..., ConsoleUser]) -> None:
    _manager(client, make_user)
    assert 'href="/integrations"' in client.get("/integrations").text


def test_a_key_is_created_shown_once_and_revoked(
    client: FlaskClient, make_user: Callable[..., ConsoleUser], make_site: Callable[..., Site]
) -> None:
    site = make_site()
    token = _manager(client, make_user)
    answer = client.post(
        "/integrations/keys",
        data={"csrf_token": token, "key-name": "Home Assistant", "key-scopes": ["doors:read", "alarms:read"],
              "key-site": str(site.id)},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    full = re.search(r'value="(gh_ops_[^"]+)"', answer.text).group(1)
    key = db.session.scalar(select(ApiKey))
    assert api_keys.authenticate(db.session, full) is key and key.site_id == site.id
    listing = client.get("/integrations").text
    assert full not in listing and f"gh_ops_{key.prefix}" in listing and "Home Assistant" in listing
    revoked = client.post(f"/integrations/keys/{key.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    db.session.expire_all()
    assert api_keys.authenticate(db.session, full) is None


def test_a_key_without_scopes_is_refused_on_the_form(
    client: FlaskClient, make_user: Callable[..., ConsoleUser]
) -> None:
    token = _manager(client, make_user)
    answer = client.post("/integrations/keys", data={"csrf_token": token, "key-name": "PMS", "key-site": "0"})
    assert answer.status_code == 400 and "Tick at least one thing the key may do." in answer.text
    assert db.session.scalar(select(ApiKey)) is None


def test_a_webhook_is_registered_with_its_secret_shown_once_then_turned_off_and_removed(
    client: FlaskClient, make_user: Callable[..., ConsoleUser], keys: ServerKeys
) -> None:
    token = _manager(client, make_user)
    answer = client.post(
        "/integrations/webhooks",
        data={"csrf_token": token, "hook-name": "PMS", "hook-url": "https://pms.example/hooks",
              "hook-topics": ["access.granted", "alarm.raised"], "hook-site": "0"},
    )  # fmt: skip
    assert answer.status_code == 200
    secret = re.search(r'value="(whsec_[^"]+)"', answer.text).group(1)
    hook = db.session.scalar(select(Webhook))
    assert webhooks.signing_secret(keys, hook) == secret and hook.topics == "access.granted alarm.raised"
    db.session.add(
        WebhookDelivery(webhook_id=hook.id, feed_id=1, message_id="m1", status=DeliveryStatus.FAILED, attempts=10,
                        last_attempt_at=utcnow(), last_status=503, last_error="the receiver answered 503")
    )  # fmt: skip
    db.session.commit()
    listing = client.get("/integrations").text
    assert secret not in listing and 'data-failed="1"' in listing
    assert client.post(f"/integrations/webhooks/{hook.id}/active", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Webhook, hook.id).active is False
    assert client.post(f"/integrations/webhooks/{hook.id}/delete", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Webhook)) is None


def test_a_bad_url_is_refused_on_the_form(client: FlaskClient, make_user: Callable[..., ConsoleUser]) -> None:
    token = _manager(client, make_user)
    answer = client.post(
        "/integrations/webhooks",
        data={"csrf_token": token, "hook-name": "PMS", "hook-url": "https://user:pw@pms.example/",
              "hook-topics": ["access.granted"], "hook-site": "0"},
    )  # fmt: skip
    assert answer.status_code == 400 and "Leave the user name and password out of the URL" in answer.text
    assert db.session.scalar(select(Webhook)) is None


def test_the_page_has_no_inline_script_or_style(client: FlaskClient, make_user: Callable[..., ConsoleUser]) -> None:
    _manager(client, make_user)
    page = client.get("/integrations").text
    assert " style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)
