"""`gatehouse retention` and `gatehouse alarms`: apply retention now, and list what needs a manager's attention."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import select

from server.cli.common import config_option, fail, server_app

if TYPE_CHECKING:
    from server.config import ServerConfig
    from server.models import Site

site_option = click.option("--site", "site_code", help="Site code; default: every site.")


@contextmanager
def _database(config_path: Path) -> Iterator[ServerConfig]:
    """The server config, inside an app context on a current schema; connections closed on the way out."""
    from server.extensions import db

    config, app = server_app(config_path, False)
    with app.app_context():
        try:
            yield config
        finally:
            db.session.remove()
            db.engine.dispose()


def _site_or_all(code: str | None) -> Site | None:
    from server.extensions import db
    from server.services.access import sites
    from server.services.errors import DomainError

    if code is None:
        return None
    try:
        return sites.get_site(db.session, code)
    except DomainError as exc:
        fail(exc.message)


@click.group()
def retention() -> None:
    """Retention of access events, visitor passes and unused face templates (periods are per site)."""


@retention.command("run")
@config_option
@site_option
def retention_run(config_path: Path, site_code: str | None) -> None:
    """Apply retention and check for overdue erasures now; prints what was removed at each site."""
    from server.extensions import db
    from server.models import Site
    from server.services.audit import Actor
    from server.services.privacy import alarms
    from server.services.privacy import retention as service

    with _database(config_path) as config:
        site = _site_or_all(site_code)
        report = service.run_retention(db.session, Actor("cli"), site=site, chunk_rows=config.retention.chunk_rows)
        if not report.sites:
            click.echo("no sites")
        for purge in report.sites:
            raised = alarms.check_erasures(db.session, report.at, site=db.session.get_one(Site, purge.site_id))
            db.session.commit()
            click.echo(
                f"{purge.site_code}: events purged {purge.events}, passes purged {purge.passes}, "
                f"templates erased {purge.templates}, alarms raised {raised}"
            )


@click.group()
def alarms() -> None:
    """Alarms a manager must act on (overdue erasures, the face-count threshold)."""


@alarms.command("list")
@config_option
@site_option
def alarms_list(config_path: Path, site_code: str | None) -> None:
    """List open alarms, newest first (with --site: that site's and the server-wide ones)."""
    from server.extensions import db
    from server.models import Site
    from server.services.privacy import alarms as service

    with _database(config_path):
        site = _site_or_all(site_code)
        found = service.open_alarms(db.session, site.id if site is not None else None)
        if not found:
            click.echo("no open alarms")
        codes = {site_id: code for site_id, code in db.session.execute(select(Site.id, Site.code))}
        for alarm in found:
            where = "server" if alarm.site_id is None else codes[alarm.site_id]
            click.echo(
                f"#{alarm.id} {alarm.raised_at:%Y-%m-%d %H:%M} UTC [{where}] {alarm.kind.value}: {alarm.message}"
            )
