"""The `gatehouse` command: server, worker, terminal, mobile API, database, keys, users, face enrollment, demo.

One module per command group; this one only assembles them.
"""

from __future__ import annotations

import click

from server.cli.app_accounts import app_accounts
from server.cli.broker import broker
from server.cli.database import db_group
from server.cli.demo import demo
from server.cli.door_modes import doors_group
from server.cli.doors import door_group
from server.cli.face import face
from server.cli.integrations import api_keys_group, webhooks_group
from server.cli.keys import keys_group
from server.cli.mobile import mobile_api_group
from server.cli.privacy import consent, privacy
from server.cli.retention import alarms, retention
from server.cli.serve import server
from server.cli.sites import site_group
from server.cli.subject_access import subject_access
from server.cli.terminal import terminal
from server.cli.users import users_group

__all__ = ["main"]


@click.group()
@click.version_option(package_name="gatehouse")
def main() -> None:
    """Gatehouse access control: face always optional, consent first, terminals decide offline."""


for group in (
    server,
    terminal,
    mobile_api_group,
    db_group,
    keys_group,
    site_group,
    door_group,
    doors_group,
    users_group,
    face,
    privacy,
    consent,
    retention,
    alarms,
    subject_access,
    app_accounts,
    broker,
    api_keys_group,
    webhooks_group,
    demo,
):
    main.add_command(group)
