"""Commands for one terminal (open a door, re-sync, capture a card), queued in the database.

The console writes a command row in its own transaction (with the audit entry); the worker publishes
pending commands to the terminal's command topic (never retained) and records the terminal's reply.
A command not answered by `expires_at` is given up: a door must not open minutes after someone asked.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..models import (
    CommandOp,
    CommandStatus,
    Door,
    Person,
    PersonStatus,
    Terminal,
    TerminalCommand,
    utcnow,
)
from . import audit
from .audit import Actor
from .errors import NotFound, RuleViolation
from .session import DbSession

# How long each command may wait for the terminal; capture gives the resident time to walk to it.
TTL: dict[CommandOp, timedelta] = {
    CommandOp.OPEN_DOOR: timedelta(seconds=15),
    CommandOp.RESYNC: timedelta(seconds=60),
    CommandOp.CAPTURE_CARD: timedelta(seconds=60),
}
OPEN = (CommandStatus.PENDING, CommandStatus.SENT)


def _queue(
    session: DbSession,
    actor: Actor,
    terminal: Terminal,
    op: CommandOp,
    *,
    door: Door | None = None,
    person: Person | None = None,
    at: datetime | None = None,
) -> TerminalCommand:
    at = at or utcnow()
    command = TerminalCommand(
        ref=secrets.token_hex(16),
        terminal_id=terminal.id,
        op=op,
        door_id=door.id if door else None,
        person_id=person.id if person else None,
        requested_by=actor.user_id,
        requested_at=at,
        expires_at=at + TTL[op],
        status=CommandStatus.PENDING,
    )
    session.add(command)
    session.flush()
    return command


def open_door(
    session: DbSession, actor: Actor, terminal: Terminal, door: Door, at: datetime | None = None
) -> TerminalCommand:
    """Ask the terminal to open one of its doors once; audited with who asked."""
    if door not in terminal.doors:
        raise RuleViolation(f"Terminal {terminal.name} does not serve door {door.name}.", code="door_not_served")
    command = _queue(session, actor, terminal, CommandOp.OPEN_DOOR, door=door, at=at)
    audit.record(
        session,
        actor,
        "terminal.open_door",
        "terminal",
        terminal.id,
        site_id=terminal.site_id,
        details={"door_id": door.id, "command": command.ref},
    )
    return command


def request_resync(session: DbSession, actor: Actor, terminal: Terminal, at: datetime | None = None) -> TerminalCommand:
    """Ask the terminal to fetch a complete roster and compare it with its own."""
    command = _queue(session, actor, terminal, CommandOp.RESYNC, at=at)
    audit.record(
        session,
        actor,
        "terminal.resync",
        "terminal",
        terminal.id,
        site_id=terminal.site_id,
        details={"command": command.ref},
    )
    return command


def capture_card(
    session: DbSession, actor: Actor, terminal: Terminal, person: Person, at: datetime | None = None
) -> TerminalCommand:
    """Enroll the next card presented at `terminal` for `person`; the UID goes from terminal to hash, never to disk."""
    if person.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Credentials can only be added for people who are active at the site.", code="inactive")
    if terminal.site_id != person.site_id:
        raise RuleViolation("Choose a terminal at the person's own site.", code="other_site")
    command = _queue(session, actor, terminal, CommandOp.CAPTURE_CARD, person=person, at=at)
    audit.record(
        session,
        actor,
        "credential.capture_requested",
        "person",
        person.id,
        site_id=person.site_id,
        details={"terminal_id": terminal.id, "command": command.ref},
    )
    return command


def get_command(session: DbSession, command_id: int) -> TerminalCommand:
    """One command, or NotFound."""
    command = session.get(TerminalCommand, command_id)
    if command is None:
        raise NotFound("No such terminal command.", code="no_command")
    return command


def expire_commands(session: DbSession, at: datetime | None = None) -> int:
    """Give up commands whose time has passed; returns how many."""
    at = at or utcnow()
    result = session.execute(
        update(TerminalCommand)
        .where(TerminalCommand.status.in_(OPEN), TerminalCommand.expires_at <= at)
        .values(status=CommandStatus.EXPIRED, finished_at=at, outcome="expired")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def pending_commands(session: DbSession, at: datetime | None = None) -> list[TerminalCommand]:
    """Commands not yet published and still in time, oldest first."""
    at = at or utcnow()
    stmt = (
        select(TerminalCommand)
        .where(TerminalCommand.status == CommandStatus.PENDING, TerminalCommand.expires_at > at)
        .order_by(TerminalCommand.id)
    )
    return list(session.scalars(stmt))
