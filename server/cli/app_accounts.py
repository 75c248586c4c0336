"""`gatehouse app-accounts`: turn the residents' phone app on or off for a person, sign devices out, show the state."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from server.cli.common import app_context, config_option, fail

if TYPE_CHECKING:
    from server.models import Person
    from server.services.audit import Actor
    from server.services.session import DbSession

T = TypeVar("T")
person_argument = click.argument("person_id", type=int)


def _run(config_path: Path, person_id: int, work: Callable[[DbSession, Actor, Person], T]) -> T:
    """Run `work(session, actor, person)` in one transaction; refusals print their reason and exit 2."""
    from server.extensions import db
    from server.models import Person
    from server.services.audit import Actor
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            person = db.session.get(Person, person_id)
            if person is None:
                fail(f"no person with id {person_id}")
            try:
                result = work(db.session, Actor("cli"), person)
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                fail(f"{exc.message} ({exc.code})")
            return result
        finally:
            # Connections closed on the way out, as the process may live on (tests, a calling script).
            db.session.remove()
            db.engine.dispose()


def _read_password() -> str:
    """The first line of stdin, without its line ending (spaces are part of the password)."""
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        fail("--password-stdin was given but stdin held no password")
    return password


@click.group("app-accounts")
def app_accounts() -> None:
    """Residents' phone-app accounts: who may sign in to the app, and how."""


@app_accounts.command("enable")
@config_option
@person_argument
@click.option("--username", help="Username to sign in with (3-64 of a-z, 0-9, '.', '_', '-'); optional with a phone.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read a first password from the first line of stdin. Without it, the resident signs in with a code "
    "sent to the phone on file and sets a password in the app.",
)
def enable(config_path: Path, person_id: int, username: str | None, password_stdin: bool) -> None:
    """Turn the phone app on (or back on) for the person PERSON_ID."""
    from server.services.accounts import app_accounts as service

    password = _read_password() if password_stdin else None

    def work(session: DbSession, actor: Actor, person: Person) -> str:
        account = service.enable_account(session, actor, person, username=username, password=password)
        return _describe(account.username, account.phone_key is not None)

    click.echo(f"phone app on for person {person_id}; signs in with {_run(config_path, person_id, work)}")


@app_accounts.command("disable")
@config_option
@person_argument
def disable(config_path: Path, person_id: int) -> None:
    """Turn the phone app off for PERSON_ID; every device is signed out at once."""
    from server.services.accounts import app_accounts as service

    ended = _run(config_path, person_id, lambda session, actor, person: service.disable_account(session, actor, person))
    click.echo(f"phone app off for person {person_id}; {ended} device(s) signed out")


@app_accounts.command("sign-out")
@config_option
@person_argument
def sign_out(config_path: Path, person_id: int) -> None:
    """Sign every device of PERSON_ID out (a lost phone); the app stays on."""
    from server.services.accounts import app_accounts as service

    ended = _run(
        config_path, person_id, lambda session, actor, person: service.sign_out_everywhere(session, actor, person)
    )
    click.echo(f"{ended} device(s) of person {person_id} signed out")


@app_accounts.command("show")
@config_option
@person_argument
def show(config_path: Path, person_id: int) -> None:
    """Show whether the app is on for PERSON_ID, how they sign in and how many devices are signed in."""
    from server.services.accounts import app_accounts as service
    from server.services.accounts import app_sessions

    def work(session: DbSession, actor: Actor, person: Person) -> list[str]:
        account = service.account_of(session, person)
        if account is None:
            return ["phone app: never turned on"]
        live = app_sessions.live_sessions(session, account) if account.enabled else []
        lines = [
            f"phone app: {'on' if account.enabled else 'off'}",
            f"signs in with: {_describe(account.username, account.phone_key is not None)}",
            f"password: {'set' if account.password_hash else 'not set'}",
            f"signed-in devices: {len(live)}",
        ]
        if live:
            lines.append(f"last used: {live[0].last_used_at:%Y-%m-%d %H:%M} UTC")
        return lines

    for line in _run(config_path, person_id, work):
        click.echo(line)


def _describe(username: str | None, phone: bool) -> str:
    """How an account signs in, without the phone number itself."""
    ways = ([f"username {username}"] if username else []) + (["the phone on file"] if phone else [])
    return " or ".join(ways) or "nothing (give a username or record a phone number)"
