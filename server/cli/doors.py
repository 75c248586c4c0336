"""`gatehouse door`: create doors, list them and set the entry methods each accepts.

The same service functions as the console's door pages, so the rule that face is never the only way through
a door holds here too: a door that takes face must take key card, ID document and app code as well.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from server.cli.common import app_context, config_option, fail

_METHODS = (("face", "face"), ("card", "key card"), ("id_document", "ID document"), ("app_code", "app code"))


def _method_options(*, create: bool):  # type: ignore[no-untyped-def]
    """--face/--no-face, --card/--no-card, --id-document/--no-id-document, --app-code/--no-app-code."""

    def decorate(command):  # type: ignore[no-untyped-def]
        for field, label in reversed(_METHODS):
            flag = field.replace("_", "-")
            if create:
                default: bool | None = field != "face"
                help_text = f"Accept {label} (default: {'yes' if default else 'no'})."
            else:
                default, help_text = None, f"Accept {label} or not (unchanged if not given)."
            command = click.option(f"--{flag}/--no-{flag}", field, default=default, help=help_text)(command)
        return command

    return decorate


def _describe(door) -> str:  # type: ignore[no-untyped-def]
    from server.services.access.sites import methods_of

    methods = methods_of(door)
    taken = [label for field, label in _METHODS if getattr(methods, field)]
    return f"{door.id}\t{door.name}\t{', '.join(taken)}"


@click.group("door")
def door_group() -> None:
    """Doors of a site and the entry methods they accept (face never alone)."""


@door_group.command("create")
@config_option
@click.option("--site", "site_code", required=True, help="Site code.")
@click.option("--name", required=True, help="Door name, unique within the site, e.g. 'North gate'.")
@_method_options(create=True)
def door_create(config_path: Path, site_code: str, name: str, **methods: bool) -> None:
    """Create a door; by default it takes key card, ID document and app code, and not face."""
    from server.extensions import db
    from server.services.access.sites import DoorMethods, get_site, save_door
    from server.services.audit import Actor
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            door = save_door(db.session, Actor("cli"), get_site(db.session, site_code), name, DoorMethods(**methods))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            fail(exc.message)
        click.echo(f"created door {_describe(door)}")


@door_group.command("list")
@config_option
@click.option("--site", "site_code", required=True, help="Site code.")
def door_list(config_path: Path, site_code: str) -> None:
    """List a site's doors: id, name and the entry methods each accepts."""
    from server.extensions import db
    from server.services.access.sites import get_site
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            site = get_site(db.session, site_code)
        except DomainError as exc:
            fail(exc.message)
        for door in site.doors:
            click.echo(_describe(door))
        if not site.doors:
            click.echo(f"site {site.code} has no doors yet; add one with `gatehouse door create`", err=True)


@door_group.command("set-methods")
@config_option
@click.option("--site", "site_code", required=True, help="Site code.")
@click.option("--door", "door_name", required=True, help="Door name.")
@_method_options(create=False)
def door_set_methods(config_path: Path, site_code: str, door_name: str, **changes: bool | None) -> None:
    """Change the entry methods a door accepts; those not given stay as they are."""
    from server.extensions import db
    from server.services.access.sites import edit_door, get_door, get_site, methods_of
    from server.services.audit import Actor
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            door = get_door(db.session, get_site(db.session, site_code), door_name)
            methods = replace(methods_of(door), **{k: v for k, v in changes.items() if v is not None})
            door = edit_door(db.session, Actor("cli"), door, door.name, methods)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            fail(exc.message)
        click.echo(f"door {_describe(door)}")
