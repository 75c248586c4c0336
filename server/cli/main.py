"""The `gatehouse` command: server, worker, terminal, mobile API, database, keys, users, face enrollment, demo."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import click

from gatehouse_core.keyring import SIGNING_PUBLIC_KEY, KeyDirError, init_keys
from server.cli.app_accounts import app_accounts
from server.cli.common import (
    app_context,
    check_option,
    config_option,
    fail,
    load_or_exit,
    server_app,
    setup_logging,
    stop_on_signals,
)
from server.cli.face import face
from server.cli.privacy import consent, privacy
from server.cli.retention import alarms, retention
from server.cli.subject_access import subject_access
from server.ops.terminal_files import write_terminal_dir


@click.group()
@click.version_option(package_name="gatehouse")
def main() -> None:
    """Gatehouse access control: face always optional, consent first, terminals decide offline."""


main.add_command(face)
main.add_command(privacy)
main.add_command(consent)
main.add_command(retention)
main.add_command(alarms)
main.add_command(subject_access)
main.add_command(app_accounts)


# ---- server ---------------------------------------------------------------------------------------------------


@main.group()
def server() -> None:
    """The console web server and the worker."""


@server.command("run")
@config_option
@check_option
def server_run(config_path: Path, check_config: bool) -> None:
    """Serve the console (waitress)."""
    from waitress import create_server

    from server.extensions import db
    from server.services.accounts.users import admin_exists

    config, app = server_app(config_path, check_config)
    if config.mode == "production":
        with app.app_context():
            if not admin_exists(db.session):
                fail(
                    "production mode needs an admin user; create one with "
                    "`gatehouse users create --config FILE --username NAME --role admin`"
                )
    httpd = create_server(app, host=config.http.host, port=config.http.port, threads=config.http.threads)
    stop = threading.Event()
    stop_on_signals(stop)
    threading.Thread(target=lambda: (stop.wait(), httpd.close()), daemon=True).start()
    logging.getLogger(__name__).info("console listening on http://%s:%d/", config.http.host, config.http.port)
    try:
        httpd.run()
    except OSError:
        if not stop.is_set():
            raise


@server.command("worker")
@config_option
@check_option
def server_worker(config_path: Path, check_config: bool) -> None:
    """Run the worker: MQTT ingest of terminal status (sync publisher and event ingest to follow)."""
    from server.link.worker import Worker

    _config, app = server_app(config_path, check_config)
    stop = threading.Event()
    stop_on_signals(stop)
    Worker(app, stop).run()


# ---- database, keys, sites, users -----------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@config_option
def db_upgrade(config_path: Path) -> None:
    """Create or migrate the database schema to the latest version."""
    from flask_migrate import upgrade

    from server.app import MIGRATIONS_DIR, create_app
    from server.config import load_server_config

    config = load_or_exit(load_server_config, config_path)
    setup_logging("WARNING")
    try:
        app = create_app(config)
    except KeyDirError as exc:
        fail(str(exc))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
    click.echo("database is up to date")


@main.group("keys")
def keys_group() -> None:
    """Server keys."""


@keys_group.command("init")
@click.option("--key-dir", type=click.Path(file_okay=False, path_type=Path), help="Key directory to create.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GATEHOUSE_CONFIG",
    help="Take the key directory from this server config instead.",
)
@click.option("--force", is_flag=True, help="Replace existing keys. Terminals must then be re-provisioned.")
def keys_init(key_dir: Path | None, config_path: Path | None, force: bool) -> None:
    """Create the signing keypair, credential-hashing secret, template key and session secret."""
    if key_dir is None:
        if config_path is None:
            fail("give --key-dir DIR or --config FILE")
        from server.config import load_server_config

        key_dir = load_or_exit(load_server_config, config_path).key_dir
    written = init_keys(key_dir, overwrite=force)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo(f"all keys already exist in {key_dir}; nothing changed (use --force to replace them)")
    click.echo(f"terminals pin {key_dir / SIGNING_PUBLIC_KEY}")


@main.group("site")
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


@main.group("users")
def users_group() -> None:
    """Console users."""


@users_group.command("create")
@config_option
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(["admin", "manager", "guard"]), required=True)
@click.option("--password-file", type=click.File("r"), help="Read the password from this file ('-' for stdin).")
def users_create(config_path: Path, username: str, role: str, password_file: click.File | None) -> None:
    """Create a console user; without --password-file a strong password is generated and shown once."""
    from server.extensions import db
    from server.models import ConsoleRole
    from server.services.accounts.users import create_user, generate_password
    from server.services.audit import Actor
    from server.services.errors import DomainError

    generated = password_file is None
    password = generate_password() if password_file is None else password_file.read().strip()  # type: ignore[attr-defined]
    with app_context(config_path):
        try:
            create_user(db.session, Actor("cli"), username, password, ConsoleRole(role))
            db.session.commit()
        except DomainError as exc:
            fail(exc.message)
    click.echo(f"created {role} {username}")
    if generated:
        click.echo(f"password (shown once): {password}")


# ---- terminals ------------------------------------------------------------------------------------------------


@main.group()
def terminal() -> None:
    """Door terminals."""


@terminal.command("run")
@config_option
@check_option
def terminal_run(config_path: Path, check_config: bool) -> None:
    """Run a door terminal."""
    from terminals.config import load_terminal_config
    from terminals.runtime import TerminalRuntime

    config = load_or_exit(load_terminal_config, config_path, check_config)
    setup_logging(config.log_level)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        runtime = TerminalRuntime(config, stop)
    except KeyDirError as exc:
        fail(str(exc))
    runtime.run()


def _control(config_path: Path, request: dict[str, object]) -> dict[str, object]:
    from terminals import control
    from terminals.config import load_terminal_config

    config = load_or_exit(load_terminal_config, config_path)
    path = config.control_socket or config.data_dir / "control.sock"
    try:
        answer = control.send(path, request)
    except (OSError, ValueError) as exc:
        fail(f"cannot reach the terminal's control socket {path} ({exc}); is `gatehouse terminal run` running?")
    if "error" in answer:
        fail(str(answer["error"]))
    return answer


@terminal.command("present")
@config_option
@click.option("--door", type=int, help="Door id (needed when the terminal serves several doors).")
@click.argument("kind", type=click.Choice(["card", "id", "code", "qr"]))
@click.argument("value")
def terminal_present(config_path: Path, door: int | None, kind: str, value: str) -> None:
    """Present a card UID, ID number, keyed code or QR text at a running terminal (simulation)."""
    field = {"card": "uid", "id": "number", "code": "digits", "qr": "text"}[kind]
    request: dict[str, object] = {"op": kind, field: value}
    if door is not None:
        request["door"] = door
    answer = _control(config_path, request)
    if answer.get("ignored"):
        click.echo("not a Gatehouse code; ignored")
        return
    if answer.get("captured"):
        click.echo(f"card captured for enrolment - {answer['message']}")
        return
    click.echo(f"door {answer['door']}: {'OPEN' if answer['granted'] else 'stays shut'} - {answer['message']}")


@terminal.command("status")
@config_option
def terminal_status(config_path: Path) -> None:
    """Show a running terminal's link, roster sequence, doors, lockout and unsent events."""
    for key, value in _control(config_path, {"op": "status"}).items():
        click.echo(f"{key}: {value}")


@terminal.command("clear-lockout")
@config_option
def terminal_clear_lockout(config_path: Path) -> None:
    """Clear a keypad lockout at the terminal (a guard's action; it is logged)."""
    _control(config_path, {"op": "clear_lockout"})
    click.echo("keypad lockout cleared")


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


# ---- broker ---------------------------------------------------------------------------------------------------


@main.group()
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
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address the TLS listener binds.")  # noqa: S104
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


# ---- mobile API -----------------------------------------------------------------------------------------------


@main.group("mobile-api")
def mobile_api_group() -> None:
    """The residents' phone-app API."""


@mobile_api_group.command("run")
@config_option
@check_option
def mobile_api_run(config_path: Path, check_config: bool) -> None:
    """Serve the mobile API (waitress)."""
    from waitress import serve

    from mobile_api.app import create_app
    from mobile_api.config import load_mobile_api_config

    config = load_or_exit(load_mobile_api_config, config_path, check_config)
    setup_logging(config.log_level)
    try:
        app = create_app(config)
    except KeyDirError as exc:
        fail(str(exc))
    serve(app, host=config.http.host, port=config.http.port, threads=config.http.threads)


# ---- demo -----------------------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".gatehouse-demo"),
    show_default=True,
    help="Where the demo keeps its database, keys and terminal store.",
)
@click.option("--http-port", type=int, default=8080, show_default=True, help="Console port (a free one if taken).")
@click.option(
    "--mqtt-port", type=int, default=1884, show_default=True, help="Embedded broker port (a free one if taken)."
)
@click.option("--api-port", type=int, default=8090, show_default=True, help="Phone-app API port (a free one if taken).")
def demo(data_dir: Path, http_port: int, mqtt_port: int, api_port: int) -> None:
    """Server on SQLite, embedded MQTT broker, worker, phone-app API and one simulated terminal, in one command."""
    from server.ops.demo import run_demo

    sys.exit(run_demo(data_dir.resolve(), http_port, mqtt_port, api_port))
