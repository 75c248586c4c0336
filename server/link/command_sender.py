"""Terminal commands on the wire: pending rows go out signed on each terminal's command topic, replies come back.

Runs on the worker's one loop thread. A command is published once, QoS 1 and never retained, signed for the
terminal's own topic with the server key, and carries its expiry: a terminal that was offline acts on it only
if it arrives in time (its persistent session may deliver it late). Rows out of time are given up here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.base import encode
from gatehouse_core.wire.messages import Command, CommandOp, CommandReply
from gatehouse_core.wire.signing import sign
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.models import TerminalCommand
from server.services.errors import NotFound
from server.services.session import DbSession
from server.services.terminals import commands, terminals

log = logging.getLogger(__name__)

# Hands a payload to the broker client for a topic; False when it cannot be queued (not connected).
SendFn = Callable[[str, bytes], bool]
CHECK_EVERY = 0.25  # seconds between looks for pending commands (the worker loop itself turns every 50 ms)


def to_wire(command: TerminalCommand, site_code: str, ident: str) -> Command:
    """The signed message body of one command row."""
    return Command(
        site=site_code,
        terminal=ident,
        ref=command.ref,
        op=command.op,
        door=command.door_id if command.op is CommandOp.OPEN_DOOR else None,
        expires_at=command.expires_at,
    )


class CommandSender:
    """Publishes pending commands and records replies; every call commits its own transaction."""

    def __init__(self, keys: ServerKeys, send: SendFn, *, every: float = CHECK_EVERY) -> None:
        self.keys = keys
        self._send = send
        self.every = every
        self._next = 0.0

    def publish_due(self, session: DbSession, *, force: bool = False) -> int:
        """Give up commands out of time and publish those pending, at most every `every` seconds; how many sent."""
        now = time.monotonic()
        if not force and now < self._next:
            return 0
        self._next = now + self.every
        expired = commands.expire_commands(session)
        if expired:
            log.info("gave up %d terminal command(s) not answered in time", expired)
        sent = 0
        for command, site_code, ident in commands.outgoing(session):
            topic = terminal_topic(site_code, ident, Channel.COMMAND)
            if not self._send(topic, sign(self.keys.signing_key, topic, encode(to_wire(command, site_code, ident)))):
                break  # not connected: the rest stay pending for the next turn
            commands.mark_sent(session, command)
            log.info("sent %s command %d to terminal %s", command.op.value, command.id, ident)
            sent += 1
        session.commit()
        return sent

    def record(self, session: DbSession, site_code: str, ident: str, reply: CommandReply) -> None:
        """Record one terminal's reply (a captured card becomes a credential) and commit."""
        try:
            terminal = terminals.find_terminal(session, site_code, ident)
        except NotFound:
            log.warning("dropped a command reply from unknown terminal %s", ident)
            return
        command = commands.record_reply(session, self.keys, terminal, reply)
        session.commit()
        if command is not None:
            log.info(
                "terminal %s: %s command %d %s (%s)",
                ident,
                command.op.value,
                command.id,
                command.status.value,
                command.outcome,
            )
