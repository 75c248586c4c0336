"""`gatehouse broker`: the files the site's mosquitto broker reads."""

from __future__ import annotations

import os
from pathlib import Path

import click

from server.cli.common import config_option, fail, server_app


@click.group()
def broker() -> None:
    """The site's mosquitto broker."""


@broker.command("files")
@config_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for gatehouse.conf, gatehouse.passwd, gatehouse.acl and tls/.",
)
@click.option("--port", default=8883, show_default=True, type=click.IntRange(1, 65535), help="TLS listener port.")
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address the TLS listener binds.")  # noqa: S104 - the broker serves the LAN  # nosec B104
@click.option("--hostname", "hostnames", multiple=True, help="Name or IP terminals dial (repeat); default localhost.")
@click.option("--persistence-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: OUT/persistence.")
@click.option("--owner", help="Give the files mosquitto reads to this user (e.g. mosquitto); needs root.")
@click.option("--renew-cert", is_flag=True, help="New broker certificate, same CA; restart mosquitto.")
def broker_files(
    config_path: Path,
    out_dir: Path,
    port: int,
    bind: str,
    hostnames: tuple[str, ...],
    persistence_dir: Path | None,
    owner: str | None,
    renew_cert: bool,
) -> None:
    """Write mosquitto's password file, ACL, TLS material (if absent) and config from the database."""
    from server.extensions import db
    from server.ops.broker_files import DEFAULT_HOSTNAMES, BrokerFilesError, write_broker_files

    names = hostnames or DEFAULT_HOSTNAMES
    config, app = server_app(config_path, False)
    with app.app_context():
        try:
            files = write_broker_files(
                db.session,
                config,
                out_dir,
                port=port,
                bind=bind,
                hostnames=names,
                persistence_dir=persistence_dir,
                renew_cert=renew_cert,
                owner=owner,
            )
        except BrokerFilesError as exc:
            fail(str(exc))
    for path in (files.password_file, files.acl_file, files.config):
        click.echo(f"wrote {path}")
    tls = "created" if files.tls.created else "kept existing"
    click.echo(f"{tls} TLS material in {files.ca_cert.parent}; terminals and the worker pin {files.ca_cert}")
    if missing := sorted(set(names) - set(files.cert_names)):
        click.echo(f"warning: the broker certificate does not name {', '.join(missing)}; use --renew-cert", err=True)
    if owner is None and os.geteuid() == 0:
        click.echo("warning: mosquitto drops root before reading these files; pass --owner mosquitto", err=True)
    if not config.mqtt.tls:
        click.echo("warning: mqtt.tls is false in the server config; the worker cannot reach this broker", err=True)
    click.echo(
        f"{files.terminals} terminal(s). After provisioning terminals, rerun this command and then"
        " `kill -HUP <mosquitto pid>` so the broker rereads its password file and ACL."
    )
