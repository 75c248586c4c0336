"""`gatehouse terminal`: provision a terminal, plus every `gatehouse-terminal` command under the same names."""

from __future__ import annotations

from pathlib import Path

import click

from server.cli.common import config_option, fail, server_app
from server.ops.terminal_files import write_terminal_dir
from terminals.cli import main as terminal_main


@click.group()
def terminal() -> None:
    """Door terminals."""


# run, present, status, clear-lockout: the door terminal's own command, so one install can host a terminal.
for command in terminal_main.commands.values():
    terminal.add_command(command)


@terminal.command("add")
@config_option
@click.option("--site", "site_code", required=True, help="Site code.")
@click.option("--name", required=True, help="Terminal name, e.g. 'North gate'.")
@click.option("--door", "door_names", multiple=True, required=True, help="Door it serves (repeat for several).")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where to write the terminal's config, broker password and the server public key.",
)
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", default=1883, show_default=True, type=int)
@click.option(
    "--broker-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA certificate of the broker (tls/ca.crt from `gatehouse broker files`); turns TLS on.",
)
def terminal_add(
    config_path: Path,
    site_code: str,
    name: str,
    door_names: tuple[str, ...],
    out_dir: Path,
    broker_host: str,
    broker_port: int,
    broker_ca: Path | None,
) -> None:
    """Provision a terminal and write its config directory (the broker password appears nowhere else)."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Door
    from server.services.access.sites import get_site
    from server.services.audit import Actor
    from server.services.errors import DomainError
    from server.services.terminals.terminals import provision_terminal

    config, app = server_app(config_path, False)
    with app.app_context():
        try:
            site = get_site(db.session, site_code)
            doors = list(db.session.scalars(select(Door).where(Door.site_id == site.id, Door.name.in_(door_names))))
            unknown = set(door_names) - {d.name for d in doors}
            if unknown:
                fail(f"site {site_code} has no door named {', '.join(sorted(unknown))}")
            made = provision_terminal(db.session, Actor("cli"), site, name, doors)
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
        write_terminal_dir(
            out_dir,
            config.key_dir,
            site_code,
            made.terminal.ident,
            made.mqtt_password,
            broker_host,
            broker_port,
            broker_ca,
        )
        click.echo(f"terminal {made.terminal.ident} provisioned; config in {out_dir / 'terminal.toml'}")
