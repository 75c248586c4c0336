"""What the console does with one terminal: open a door for a stated reason, ask for a re-sync, show commands."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.models import CommandStatus, Door, Terminal, TerminalCommand
from server.services.audit import Actor
from server.services.errors import NotFound, RuleViolation
from server.services.session import DbSession
from server.services.terminals import commands

REASON_MAX = 200
FINAL = (CommandStatus.DONE, CommandStatus.FAILED, CommandStatus.EXPIRED)


def get_terminal(session: DbSession, terminal_id: int) -> Terminal:
    """One terminal with its site and doors, or NotFound."""
    terminal = session.scalar(
        select(Terminal)
        .where(Terminal.id == terminal_id)
        .options(selectinload(Terminal.site), selectinload(Terminal.doors))
    )
    if terminal is None:
        raise NotFound("No such terminal.", code="no_terminal")
    return terminal


def open_door(session: DbSession, actor: Actor, terminal: Terminal, door_id: int, reason: str) -> TerminalCommand:
    """Queue a one-time door opening; its audit entry carries the reason."""
    reason = " ".join(reason.split())
    if not reason:
        raise RuleViolation("Say why the door is being opened.", code="reason_required")
    if len(reason) > REASON_MAX:
        raise RuleViolation(f"Keep the reason under {REASON_MAX} characters.", code="reason_too_long")
    door = session.get(Door, door_id)
    if door is None:
        raise RuleViolation(f"Terminal {terminal.name} does not serve this door.", code="door_not_served")
    return commands.open_door(session, actor, terminal, door, reason=reason)


def request_resync(session: DbSession, actor: Actor, terminal: Terminal) -> TerminalCommand:
    """Ask the terminal for a full roster comparison (audited by the commands service)."""
    return commands.request_resync(session, actor, terminal)


def recent_commands(session: DbSession, terminal: Terminal, limit: int = 10) -> list[TerminalCommand]:
    """The terminal's latest commands, newest first."""
    return list(
        session.scalars(
            select(TerminalCommand)
            .where(TerminalCommand.terminal_id == terminal.id)
            .order_by(TerminalCommand.id.desc())
            .limit(limit)
        )
    )


def door_names(session: DbSession, items: list[TerminalCommand]) -> dict[int, str]:
    """Names of the doors these commands open, in one query."""
    ids = {c.door_id for c in items if c.door_id is not None}
    if not ids:
        return {}
    return {door_id: name for door_id, name in session.execute(select(Door.id, Door.name).where(Door.id.in_(ids)))}
