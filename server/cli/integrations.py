"""`gatehouse api-keys` and `gatehouse webhooks`: the integration API's keys, webhooks and their deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from server.cli.common import app_context, config_option, fail

# api_keys.SCOPES, without importing the database stack when the command line starts (a test holds them equal).
SCOPES = ("events:read", "alarms:read", "doors:read", "doors:command")
ACTOR = "cli"


@contextmanager
def _database(config_path: Path) -> Iterator[None]:
    """An app context whose connections are closed on the way out (the process may live on: tests, scripts)."""
    from server.extensions import db

    with app_context(config_path):
        try:
            yield
        finally:
            db.session.remove()
            db.engine.dispose()


@click.group("api-keys")
def api_keys_group() -> None:
    """Keys other systems use on the integration API (/api/ops/v1)."""


@api_keys_group.command("create")
@config_option
@click.option("--name", required=True, help="The system that will use the key.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES), help="Repeat for more.")
@click.option("--site", "site_id", type=int, help="Limit the key to this site's id (default: every site).")
def keys_create(config_path: Path, name: str, scopes: tuple[str, ...], site_id: int | None) -> None:
    """Create a key; it is printed once and only its hash is kept."""
    from server.extensions import db
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.integrations import api_keys

    with _database(config_path):
        try:
            key, full = api_keys.create(db.session, Actor(ACTOR), name, scopes, site_id)
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
        click.echo(f"created API key {key.id} ({key.name}): {key.scopes}")
    click.echo(f"key (shown once): {full}")


@api_keys_group.command("list")
@config_option
def keys_list(config_path: Path) -> None:
    """Every key: id, prefix, name, scopes, site, last use, whether revoked (never the key)."""
    from server.extensions import db
    from server.services.integrations import api_keys

    with _database(config_path):
        for key in api_keys.list_keys(db.session):
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never used"
            state = "revoked" if key.revoked_at else "active"
            site = f"site {key.site_id}" if key.site_id else "every site"
            click.echo(f"{key.id}\tgh_ops_{key.prefix}\t{state}\t{key.name}\t{key.scopes}\t{site}\t{used}")


@api_keys_group.command("revoke")
@config_option
@click.argument("key_id", type=int)
def keys_revoke(config_path: Path, key_id: int) -> None:
    """Revoke a key: its next request is refused."""
    from server.extensions import db
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.integrations import api_keys

    with _database(config_path):
        try:
            key = api_keys.revoke(db.session, Actor(ACTOR), key_id)
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
        click.echo(f"revoked API key {key.id} ({key.name})")


@click.group("webhooks")
def webhooks_group() -> None:
    """URLs that receive operations events, signed (Standard Webhooks)."""


@webhooks_group.command("add")
@config_option
@click.option("--name", required=True)
@click.option("--url", required=True, help="https://... (plain http only to this machine in production).")
@click.option("--topic", "topics", multiple=True, required=True, help="An event type, e.g. access.granted; repeat.")
@click.option("--site", "site_id", type=int, help="Only this site's events (default: every site).")
def webhooks_add(config_path: Path, name: str, url: str, topics: tuple[str, ...], site_id: int | None) -> None:
    """Register a webhook; its signing secret is printed once."""
    from server.extensions import db
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.integrations import webhooks
    from server.state import state

    with _database(config_path):
        try:
            hook, secret = webhooks.register(
                db.session,
                Actor(ACTOR),
                state().keys,
                name,
                url,
                topics,
                site_id,
                require_https=state().config.mode == "production",
            )
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
        click.echo(f"registered webhook {hook.id} ({hook.name}) for {hook.topics}")
    click.echo(f"signing secret (shown once): {secret}")


@webhooks_group.command("list")
@config_option
def webhooks_list(config_path: Path) -> None:
    """Every webhook with its last delivery, waiting and failed deliveries."""
    from server.extensions import db
    from server.services.integrations import webhooks

    with _database(config_path):
        for s in webhooks.summaries(db.session):
            hook = s.webhook
            last = s.last_delivered_at.isoformat(timespec="seconds") if s.last_delivered_at else "never delivered"
            click.echo(
                f"{hook.id}\t{'on' if hook.active else 'off'}\t{hook.name}\t{hook.url}\t{hook.topics}\t{last}\t"
                f"waiting {s.pending}\tfailed {s.failed}" + (f"\t{s.last_error}" if s.last_error else "")
            )


@webhooks_group.command("remove")
@config_option
@click.argument("webhook_id", type=int)
def webhooks_remove(config_path: Path, webhook_id: int) -> None:
    """Remove a webhook and its waiting deliveries."""
    from server.extensions import db
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.integrations import webhooks

    with _database(config_path):
        try:
            webhooks.delete(db.session, Actor(ACTOR), webhook_id)
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
    click.echo(f"removed webhook {webhook_id}")


@webhooks_group.command("rotate-secret")
@config_option
@click.argument("webhook_id", type=int)
def webhooks_rotate(config_path: Path, webhook_id: int) -> None:
    """Give a webhook a new signing secret, printed once; deliveries from now on are signed with it."""
    from server.extensions import db
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.integrations import webhooks
    from server.state import state

    with _database(config_path):
        try:
            _hook, secret = webhooks.rotate_secret(db.session, Actor(ACTOR), state().keys, webhook_id)
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
    click.echo(f"signing secret of webhook {webhook_id} (shown once): {secret}")


@webhooks_group.command("deliver")
@config_option
@click.option("--once", is_flag=True, help="One round (queue, then send what is due), then exit.")
def webhooks_deliver(config_path: Path, once: bool) -> None:
    """Send webhook deliveries (the worker does this continuously); with --once, a single round."""
    import threading

    from server.cli.common import server_app, stop_on_signals
    from server.extensions import db
    from server.link.webhook_sender import WebhookSender

    _config, app = server_app(config_path, False)
    sender = WebhookSender(app)
    try:
        if once:
            outcome = sender.run_once()
            click.echo(f"delivered {outcome.delivered}, retrying {outcome.retrying}, failed {outcome.failed}")
            return
        stop = threading.Event()
        stop_on_signals(stop)
        sender.run(stop)
    finally:
        with app.app_context():
            db.engine.dispose()
