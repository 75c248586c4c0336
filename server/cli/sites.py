"""`gatehouse site`: create sites."""

from __future__ import annotations

from pathlib import Path

import click

from server.cli.common import app_context, config_option, fail


@click.group("site")
def site_group() -> None:
    """Sites."""


@site_group.command("create")
@config_option
@click.option("--code", required=True, help="Short code used in topics, e.g. 'maple-court'.")
@click.option("--name", required=True, help="Display name.")
@click.option("--timezone", default="Asia/Shanghai", show_default=True, help="IANA time zone of the site.")
def site_create(config_path: Path, code: str, name: str, timezone: str) -> None:
    """Create a site."""
    from server.extensions import db
    from server.services.access.sites import create_site
    from server.services.audit import Actor
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            site = create_site(db.session, Actor("cli"), code=code, name=name, timezone=timezone)
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
        click.echo(f"created site {site.code}")
