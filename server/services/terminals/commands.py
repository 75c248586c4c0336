"""Commands for one terminal (open a door, re-sync, capture a card), queued in the database, and shown.

The console writes a command row in its own transaction (with the audit entry); the worker publishes
pending commands to the terminal's command topic (never retained) and records the terminal's reply.
A command not answered by `expires_at` is given up: a door must not open minutes after someone asked.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.messages import CommandOutcome, CommandReply
from server.models import (
    CommandOp,
    CommandStatus,
    ConsoleUser,
    Door,
    Person,
    PersonStatus,
    Site,
    Terminal,
    TerminalCommand,
    utcnow,
)
from server.services import audit
from server.services.audit import Actor
from server.services.errors import DomainError, NotFound, RuleViolation
from server.services.people import credentials
from server.services.session import DbSession

log = logging.getLogger(__name__)

# How long each command may wait for the terminal; capture gives the resident time to walk to it.
TTL: dict[CommandOp, timedelta] = {
    CommandOp.OPEN_DOOR: timedelta(seconds=15),
    CommandOp.RESYNC: timedelta(seconds=60),
    CommandOp.CAPTURE_CARD: timedelta(seconds=60),
}
OPEN = (CommandStatus.PENDING, CommandStatus.SENT)
FINAL = (CommandStatus.DONE, CommandStatus.FAILED, CommandStatus.EXPIRED)
REASON_MAX = 200  # characters of the reason a door is opened for, as the audit log keeps it
# Which of a terminal's answers finish each command well; any other answer it may give fails it.
_SUCCESS: dict[CommandOp, CommandOutcome] = {
    CommandOp.OPEN_DOOR: CommandOutcome.OPENED,
    CommandOp.RESYNC: CommandOutcome.RESYNCING,
    CommandOp.CAPTURE_CARD: CommandOutcome.CAPTURED,
}
_FAILURES: dict[CommandOp, frozenset[CommandOutcome]] = {
    CommandOp.OPEN_DOOR: frozenset({CommandOutcome.NO_SUCH_DOOR}),
    CommandOp.RESYNC: frozenset(),
    CommandOp.CAPTURE_CARD: frozenset({CommandOutcome.BAD_UID, CommandOutcome.TIMEOUT, CommandOutcome.SUPERSEDED}),
}
# A captured card the credentials service refuses: its error code, as the console shows the outcome.
_ENROL_FAILURES = {"credential_taken": "duplicate_card", "bad_card": "bad_uid", "inactive": "inactive"}


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


def open_door(
    session: DbSession,
    actor: Actor,
    terminal: Terminal,
    door: Door,
    at: datetime | None = None,
    *,
    reason: str | None = None,
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
        details={"door_id": door.id, "command": command.ref, **({"reason": reason} if reason else {})},
    )
    return command


def open_door_with_reason(
    session: DbSession, actor: Actor, terminal: Terminal, door_id: int, reason: str
) -> TerminalCommand:
    """Queue a one-time door opening for a stated reason (the console's form); its audit entry carries the reason."""
    reason = " ".join(reason.split())
    if not reason:
        raise RuleViolation("Say why the door is being opened.", code="reason_required")
    if len(reason) > REASON_MAX:
        raise RuleViolation(f"Keep the reason under {REASON_MAX} characters.", code="reason_too_long")
    door = session.get(Door, door_id)
    if door is None:
        raise RuleViolation(f"Terminal {terminal.name} does not serve this door.", code="door_not_served")
    return open_door(session, actor, terminal, door, reason=reason)


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


def outgoing(session: DbSession, at: datetime | None = None) -> list[tuple[TerminalCommand, str, str]]:
    """Pending commands still in time, each with its terminal's site code and ident, oldest first."""
    at = at or utcnow()
    stmt = (
        select(TerminalCommand, Site.code, Terminal.ident)
        .join(Terminal, Terminal.id == TerminalCommand.terminal_id)
        .join(Site, Site.id == Terminal.site_id)
        .where(TerminalCommand.status == CommandStatus.PENDING, TerminalCommand.expires_at > at)
        .order_by(TerminalCommand.id)
    )
    return [(command, code, ident) for command, code, ident in session.execute(stmt)]


def mark_sent(session: DbSession, command: TerminalCommand, at: datetime | None = None) -> None:
    """The worker handed the command to the broker; the terminal's reply finishes it."""
    if command.status is CommandStatus.PENDING:
        command.status = CommandStatus.SENT
        command.sent_at = at or utcnow()


def _finish(command: TerminalCommand, status: CommandStatus, outcome: str, at: datetime) -> TerminalCommand:
    command.status = status
    command.outcome = outcome[:32]
    command.finished_at = at
    return command


def _requester(session: DbSession, command: TerminalCommand) -> Actor:
    """Who asked for the command: the enrolment is theirs in the audit log."""
    user = session.get(ConsoleUser, command.requested_by) if command.requested_by is not None else None
    return Actor.of(user) if user is not None else Actor("console")


def record_reply(
    session: DbSession, keys: ServerKeys, terminal: Terminal, reply: CommandReply, at: datetime | None = None
) -> TerminalCommand | None:
    """Record a terminal's answer to one of its own open commands; a captured card is enrolled at once.

    Returns the command, or None when the reply names no open command of this terminal (late, replayed,
    or another terminal's). The card UID is hashed by the credentials service and never kept.
    """
    at = at or utcnow()
    command = session.scalar(select(TerminalCommand).where(TerminalCommand.ref == reply.ref))
    if command is None or command.terminal_id != terminal.id:
        log.warning("terminal %s answered a command that is not its own", terminal.ident)
        return None
    if command.status not in OPEN:
        log.info("terminal %s answered command %d, which is already %s", terminal.ident, command.id, command.status)
        return None
    if reply.outcome is not _SUCCESS[command.op] and reply.outcome not in _FAILURES[command.op]:
        log.warning("terminal %s answered a %s command with %s", terminal.ident, command.op, reply.outcome)
        return _finish(command, CommandStatus.FAILED, "bad_reply", at)
    if reply.outcome is not _SUCCESS[command.op]:
        return _finish(command, CommandStatus.FAILED, reply.outcome.value, at)
    if command.op is not CommandOp.CAPTURE_CARD:
        return _finish(command, CommandStatus.DONE, reply.outcome.value, at)
    person = session.get(Person, command.person_id) if command.person_id is not None else None
    if person is None or reply.uid is None:
        return _finish(command, CommandStatus.FAILED, "no_person" if person is None else "bad_reply", at)
    try:
        credential = credentials.add_card(session, _requester(session, command), keys, person, reply.uid)
    except DomainError as exc:
        # add_card checks everything before it writes, so nothing of the refused card is left behind.
        return _finish(command, CommandStatus.FAILED, _ENROL_FAILURES.get(exc.code, exc.code), at)
    command.credential_id = credential.id
    return _finish(command, CommandStatus.DONE, "enrolled", at)


def shown_status(command: TerminalCommand, at: datetime | None = None) -> CommandStatus:
    """The command's status as the console shows it: past its deadline and unanswered counts as expired.

    The worker marks such commands expired on its next round; the console need not wait for it.
    """
    at = at or utcnow()
    if command.status in OPEN and command.expires_at <= at:
        return CommandStatus.EXPIRED
    return command.status
