"""Terminal commands on the server: the worker publishes pending rows signed, gives up late ones, and records
replies, a captured card becoming the person's credential (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.base import decode, encode
from gatehouse_core.wire.messages import Command, CommandOp, CommandOutcome, CommandReply
from gatehouse_core.wire.signing import verify
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.extensions import db
from server.link.command_sender import CommandSender
from server.link.worker import Worker
from server.models import (
    AuditEntry,
    CommandStatus,
    ConsoleRole,
    Credential,
    CredentialStatus,
    Door,
    Person,
    Site,
    Terminal,
    TerminalCommand,
    utcnow,
)
from server.services.audit import Actor
from server.services.people import credentials
from server.services.terminals import commands, terminals
from tests.conftest import TEST_ACTOR

UID = "04A2B3C4D5E6F7"


class Estate:
    def __init__(self, site: Site, gate: Door, terminal: Terminal, other: Terminal, person: Person) -> None:
        self.site, self.gate, self.terminal, self.other, self.person = site, gate, terminal, other, person


@pytest.fixture
def estate(app: Flask, make_site: Any, make_door: Any, make_person: Any) -> Estate:
    site = make_site()
    gate = make_door(site, "Gate")
    side = make_door(site, "Side")
    terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Gate terminal", [gate]).terminal
    other = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Side terminal", [side]).terminal
    db.session.commit()
    person = make_person(site, "Resident")
    return Estate(site, gate, terminal, other, person)


@pytest.fixture
def manager(make_user: Any) -> Actor:
    return Actor.of(make_user("manager1", ConsoleRole.MANAGER))


class Outbox:
    """Stands in for the broker client: what was published, or refuses while 'offline'."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.online = True

    def __call__(self, topic: str, payload: bytes) -> bool:
        if self.online:
            self.sent.append((topic, payload))
        return self.online


def reply(
    command: TerminalCommand, terminal: Terminal, outcome: CommandOutcome, uid: str | None = None
) -> CommandReply:
    return CommandReply(terminal=terminal.ident, ref=command.ref, outcome=outcome, uid=uid)


def fresh(command: TerminalCommand) -> TerminalCommand:
    db.session.expire_all()
    found = db.session.get(TerminalCommand, command.id)
    assert found is not None
    return found


# ---- publishing ------------------------------------------------------------------------------------------------


def test_pending_commands_go_out_signed_for_the_terminal_topic_and_are_marked_sent(
    estate: Estate, manager: Actor, keys: ServerKeys
) -> None:
    opened = commands.open_door(db.session, manager, estate.terminal, estate.gate)
    resync = commands.request_resync(db.session, manager, estate.other)
    db.session.commit()
    outbox = Outbox()
    sender = CommandSender(keys, outbox)
    assert sender.publish_due(db.session) == 2
    assert sender.publish_due(db.session) == 0  # not due yet, and nothing pending anyway
    topic = terminal_topic(estate.site.code, estate.terminal.ident, Channel.COMMAND)
    assert [t for t, _ in outbox.sent] == [topic, terminal_topic(estate.site.code, estate.other.ident, Channel.COMMAND)]
    message = decode(Command, verify(keys.signing_key.public_key(), topic, outbox.sent[0][1]))
    assert (message.site, message.terminal, message.ref, message.op, message.door) == (
        estate.site.code,
        estate.terminal.ident,
        opened.ref,
        CommandOp.OPEN_DOOR,
        estate.gate.id,
    )
    assert message.expires_at == fresh(opened).expires_at
    assert decode(Command, outbox.sent[1][1][68:]).door is None
    for command in (opened, resync):
        row = fresh(command)
        assert row.status is CommandStatus.SENT and row.sent_at is not None
    assert sender.publish_due(db.session, force=True) == 0  # sent once only


def test_commands_wait_while_the_broker_is_away_and_late_ones_are_given_up(
    estate: Estate, manager: Actor, keys: ServerKeys
) -> None:
    late = commands.open_door(db.session, manager, estate.terminal, estate.gate, at=utcnow() - timedelta(seconds=20))
    waiting = commands.request_resync(db.session, manager, estate.terminal)
    db.session.commit()
    outbox = Outbox()
    outbox.online = False
    sender = CommandSender(keys, outbox)
    assert sender.publish_due(db.session) == 0
    assert (fresh(late).status, fresh(late).outcome) == (CommandStatus.EXPIRED, "expired")
    assert fresh(waiting).status is CommandStatus.PENDING
    outbox.online = True
    assert sender.publish_due(db.session, force=True) == 1
    assert [decode(Command, p[68:]).ref for _, p in outbox.sent] == [waiting.ref]


# ---- replies ---------------------------------------------------------------------------------------------------


def sent(command: TerminalCommand) -> TerminalCommand:
    commands.mark_sent(db.session, command)
    db.session.commit()
    return command


@pytest.mark.parametrize(
    ("outcome", "status", "stored"),
    [
        (CommandOutcome.OPENED, CommandStatus.DONE, "opened"),
        (CommandOutcome.NO_SUCH_DOOR, CommandStatus.FAILED, "no_such_door"),
        (CommandOutcome.RESYNCING, CommandStatus.FAILED, "bad_reply"),  # not an answer to open_door
    ],
)
def test_reply_to_an_open_door_finishes_it(
    estate: Estate, manager: Actor, keys: ServerKeys, outcome: CommandOutcome, status: CommandStatus, stored: str
) -> None:
    command = sent(commands.open_door(db.session, manager, estate.terminal, estate.gate))
    assert commands.record_reply(db.session, keys, estate.terminal, reply(command, estate.terminal, outcome))
    db.session.commit()
    row = fresh(command)
    assert (row.status, row.outcome) == (status, stored)
    assert row.finished_at is not None


def test_replies_from_another_terminal_or_after_the_end_change_nothing(
    estate: Estate, manager: Actor, keys: ServerKeys
) -> None:
    command = sent(commands.request_resync(db.session, manager, estate.terminal))
    answer = reply(command, estate.other, CommandOutcome.RESYNCING)
    assert commands.record_reply(db.session, keys, estate.other, answer) is None
    assert fresh(command).status is CommandStatus.SENT
    assert commands.record_reply(
        db.session, keys, estate.terminal, reply(command, estate.terminal, CommandOutcome.RESYNCING)
    )
    db.session.commit()
    finished_at = fresh(command).finished_at
    # A repeated (or late) reply finds the command finished and leaves it as it was.
    assert (
        commands.record_reply(
            db.session, keys, estate.terminal, reply(command, estate.terminal, CommandOutcome.RESYNCING)
        )
        is None
    )
    assert commands.expire_commands(db.session, at=utcnow() + timedelta(hours=1)) == 0
    assert (fresh(command).status, fresh(command).finished_at) == (CommandStatus.DONE, finished_at)


def test_captured_card_becomes_the_persons_credential_enrolled_by_the_requester(
    app: Flask, estate: Estate, manager: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    command = sent(commands.capture_card(db.session, manager, estate.terminal, estate.person))
    worker = Worker(app)
    topic = terminal_topic(estate.site.code, estate.terminal.ident, Channel.REPLY)
    worker.dispatch(topic, encode(reply(command, estate.terminal, CommandOutcome.CAPTURED, UID)))
    row = fresh(command)
    assert (row.status, row.outcome) == (CommandStatus.DONE, "enrolled")
    credential = db.session.get(Credential, row.credential_id)
    assert credential is not None
    assert (credential.person_id, credential.status) == (estate.person.id, CredentialStatus.ACTIVE)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "credential.add")).one()
    assert (entry.actor_id, entry.actor_label) == (manager.user_id, manager.label)
    # The UID is hashed, never kept or logged.
    assert UID not in caplog.text
    assert all(UID not in str(a.details) for a in db.session.scalars(select(AuditEntry)))
    assert credential.lookup_hash != UID


def test_a_card_already_registered_is_refused_and_nothing_is_added(
    estate: Estate, manager: Actor, keys: ServerKeys, make_person: Any
) -> None:
    neighbour = make_person(estate.site, "Neighbour")
    credentials.add_card(db.session, TEST_ACTOR, keys, neighbour, UID)
    db.session.commit()
    command = sent(commands.capture_card(db.session, manager, estate.terminal, estate.person))
    answer = reply(command, estate.terminal, CommandOutcome.CAPTURED, UID)
    commands.record_reply(db.session, keys, estate.terminal, answer)
    db.session.commit()
    row = fresh(command)
    assert (row.status, row.outcome, row.credential_id) == (CommandStatus.FAILED, "duplicate_card", None)
    assert db.session.scalars(select(Credential).where(Credential.person_id == estate.person.id)).all() == []


@pytest.mark.parametrize("outcome", [CommandOutcome.TIMEOUT, CommandOutcome.BAD_UID, CommandOutcome.SUPERSEDED])
def test_a_capture_without_a_usable_card_fails_with_the_terminals_reason(
    estate: Estate, manager: Actor, keys: ServerKeys, outcome: CommandOutcome
) -> None:
    command = sent(commands.capture_card(db.session, manager, estate.terminal, estate.person))
    commands.record_reply(db.session, keys, estate.terminal, reply(command, estate.terminal, outcome))
    db.session.commit()
    assert (fresh(command).status, fresh(command).outcome) == (CommandStatus.FAILED, outcome.value)
    assert db.session.scalars(select(Credential)).all() == []


def test_the_worker_drops_a_reply_naming_another_terminal_than_its_topic(
    app: Flask, estate: Estate, manager: Actor
) -> None:
    command = sent(commands.request_resync(db.session, manager, estate.terminal))
    # The side terminal may write only its own reply topic; a reply there naming the gate terminal is dropped.
    topic = terminal_topic(estate.site.code, estate.other.ident, Channel.REPLY)
    Worker(app).dispatch(topic, encode(reply(command, estate.terminal, CommandOutcome.RESYNCING)))
    Worker(app).dispatch(topic, b"not json")
    assert fresh(command).status is CommandStatus.SENT
