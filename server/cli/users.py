"""`gatehouse users`: console users."""

from __future__ import annotations

from pathlib import Path

import click

from server.cli.common import app_context, config_option, fail


@click.group("users")
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
