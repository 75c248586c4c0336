"""`gatehouse doors`: lock doors down, release them in an emergency, lift either, and see what is live.

The same service functions as the console (server/services/access/door_modes.py): a reason is required and kept
in the audit log, and the change reaches the site's terminals through the signed journal, which they keep across
restarts until it is lifted.
"""

from __future__ import annotations

from pathlib import Path

import click

from server.cli.common import app_context, config_option, fail


def _scope_options(command):  # type: ignore[no-untyped-def]
    """--site, --door (repeatable), --group, --reason."""
    for option in reversed(
        (
            click.option("--site", "site_code", required=True, help="Site code."),
            click.option("--door", "door_names", multiple=True, help="Door name (repeat for several)."),
            click.option("--group", "group_name", help="An access group: all of its doors."),
            click.option("--reason", required=True, help="Why (kept in the audit log)."),
        )
    ):
        command = option(command)
    return command


def _start(config_path: Path, mode: str, site_code: str, door_names: tuple[str, ...], group: str | None, reason: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from server.extensions import db
    from server.models import AccessGroup
    from server.services.access import door_modes
    from server.services.access.sites import get_door, get_site
    from server.services.audit import Actor
    from server.services.errors import DomainError

    if door_names and group:
        fail("give --door or --group, not both (neither: the whole site)")
    with app_context(config_path):
        try:
            site = get_site(db.session, site_code)
            door_ids = [get_door(db.session, site, name).id for name in door_names] or None
            group_id = None
            if group:
                group_id = db.session.scalar(
                    select(AccessGroup.id).where(AccessGroup.site_id == site.id, AccessGroup.name == group)
                )
                if group_id is None:
                    fail(f"site {site.code} has no access group named {group!r}")
            start = door_modes.start_lockdown if mode == "lockdown" else door_modes.start_emergency_release
            batch = start(
                db.session, Actor("cli"), site_id=site.id, door_ids=door_ids, group_id=group_id, reason=reason
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            fail(exc.message)
        live = next(o for o in door_modes.live_overrides(db.session, [site.id]) if o.batch == batch)
        click.echo(f"{mode} {batch} started on {', '.join(live.door_names)}; lift it with `gatehouse doors lift`")


@click.group("doors")
def doors_group() -> None:
    """Door modes: lockdown and emergency release, until lifted."""


@doors_group.command("lockdown")
@config_option
@_scope_options
def doors_lockdown(
    config_path: Path, site_code: str, door_names: tuple[str, ...], group_name: str | None, reason: str
) -> None:
    """Lock doors down (no --door or --group: the whole site): only staff cards and ID documents open them."""
    _start(config_path, "lockdown", site_code, door_names, group_name, reason)


@doors_group.command("release")
@config_option
@_scope_options
def doors_release(
    config_path: Path, site_code: str, door_names: tuple[str, ...], group_name: str | None, reason: str
) -> None:
    """Emergency release (no --door or --group: the whole site): doors held unlocked until lifted."""
    _start(config_path, "emergency_release", site_code, door_names, group_name, reason)


@doors_group.command("lift")
@config_option
@click.argument("batch")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
def doors_lift(config_path: Path, batch: str, reason: str) -> None:
    """Lift a lockdown or emergency release by the id `gatehouse doors status` shows."""
    from server.extensions import db
    from server.services.access import door_modes
    from server.services.audit import Actor
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            doors = door_modes.lift(db.session, Actor("cli"), batch, reason)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            fail(exc.message)
        click.echo(f"lifted {batch} on {len(doors)} door(s)")


@doors_group.command("status")
@config_option
@click.option("--site", "site_code", help="Only this site.")
def doors_status(config_path: Path, site_code: str | None) -> None:
    """Live lockdowns and emergency releases: id, mode, site, doors, since, by whom, why."""
    from server.extensions import db
    from server.models import Site
    from server.services.access import door_modes
    from server.services.access.sites import get_site
    from server.services.errors import DomainError

    with app_context(config_path):
        try:
            site_ids = None if site_code is None else [get_site(db.session, site_code).id]
        except DomainError as exc:
            fail(exc.message)
        live = door_modes.live_overrides(db.session, site_ids)
        for o in live:
            site = db.session.get(Site, o.site_id)
            code = site.code if site is not None else o.site_id
            click.echo(
                f"{o.batch}\t{o.mode.value}\t{code}\t{', '.join(o.door_names)}\t"
                f"{o.started_at.isoformat(timespec='seconds')}\t{o.started_by}\t{o.reason}"
            )
        if not live:
            click.echo("no lockdown or emergency release is live", err=True)
