"""Terminal commands on the wire: the Command and CommandReply schemas, and the terminal acting only on
genuine, addressed, timely and new commands (terminals.command_handling)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatehouse_core.wire.base import MessageError, decode, encode
from gatehouse_core.wire.messages import (
    Command,
    CommandOp,
    CommandOutcome,
    CommandReply,
    Decision,
    EntryMethod,
)
from gatehouse_core.wire.signing import sign
from gatehouse_core.wire.topics import Channel, terminal_topic
from terminals.command_handling import CAPTURED_MESSAGE, REMOTE_OPEN, RemoteCommands
from terminals.doors import DoorController
from terminals.inputs import CardPresented, CodeEntered
from terminals.relay import SimulatedRelay
from terminals.store import TerminalStore

SITE = "maple"
TERMINAL = "t-1"
TOPIC = terminal_topic(SITE, TERMINAL, Channel.COMMAND)
NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
REF = "ab" * 16
UID = "04A2B3C4D5E6F7"


def command(op: CommandOp = CommandOp.OPEN_DOOR, **kw: Any) -> Command:
    fields: dict[str, Any] = {
        "site": SITE,
        "terminal": TERMINAL,
        "ref": REF,
        "op": op,
        "door": 1 if op is CommandOp.OPEN_DOOR else None,
        "expires_at": NOW + timedelta(seconds=15),
    }
    fields.update(kw)
    return Command(**fields)


# ---- schemas -------------------------------------------------------------------------------------------------


def test_command_round_trips_and_only_open_door_names_a_door() -> None:
    message = command()
    assert decode(Command, encode(message)) == message
    assert decode(Command, encode(command(CommandOp.RESYNC))).door is None
    with pytest.raises(ValueError, match="names the door"):
        command(door=None)
    with pytest.raises(ValueError, match="names the door"):
        command(CommandOp.CAPTURE_CARD, door=2)


@pytest.mark.parametrize(
    "change",
    [
        {"ref": "not-hex"},
        {"op": "launch"},
        {"door": 0},
        {"door": "1"},
        {"expires_at": "2030-05-01T12:00:00"},  # naive: refused
        {"extra": 1},
    ],
)
def test_command_rejects_malformed_fields(change: dict[str, Any]) -> None:
    body = {**command().model_dump(mode="json"), **change}
    with pytest.raises(MessageError):
        decode(Command, json.dumps(body).encode())


def test_reply_carries_a_normalised_uid_only_when_captured_and_never_shows_it() -> None:
    reply = CommandReply(terminal=TERMINAL, ref=REF, outcome=CommandOutcome.CAPTURED, uid=UID)
    assert decode(CommandReply, encode(reply)).uid == UID
    assert UID not in repr(reply) and UID not in str(reply)
    with pytest.raises(ValueError, match="carries the UID"):
        CommandReply(terminal=TERMINAL, ref=REF, outcome=CommandOutcome.CAPTURED)
    with pytest.raises(ValueError, match="carries the UID"):
        CommandReply(terminal=TERMINAL, ref=REF, outcome=CommandOutcome.OPENED, uid=UID)
    for bad in ("04a2b3c4d5e6f7", "04A2B3", "04:A2:B3:C4", "X" * 14):
        with pytest.raises(ValueError):
            CommandReply(terminal=TERMINAL, ref=REF, outcome=CommandOutcome.CAPTURED, uid=bad)


# ---- the terminal's side -------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Rig:
    """RemoteCommands over a real store and door controller, with its replies and resync requests captured."""

    def __init__(self, path: Path, key: Ed25519PrivateKey, served: set[int]) -> None:
        self.path = path
        self.key = key
        self.served = served
        self.clock = Clock()
        self.relay = SimulatedRelay()
        self.replies: list[CommandReply] = []
        self.resyncs = 0
        self.store = TerminalStore(path)
        self.commands = self.make()

    def make(self) -> RemoteCommands:
        def resync() -> None:
            self.resyncs += 1

        return RemoteCommands(
            self.store,
            self.key.public_key(),
            SITE,
            TERMINAL,
            doors=DoorController(self.relay, 1.0),
            served=lambda: self.served,
            reply=lambda body: self.replies.append(decode(CommandReply, body)),
            resync=resync,
            clock=self.clock,
        )

    def restart(self) -> None:
        self.store.close()
        self.store = TerminalStore(self.path)
        self.commands = self.make()

    def send(self, message: Command, topic: str = TOPIC, key: Ed25519PrivateKey | None = None) -> bool:
        return self.commands.handle(topic, sign(key or self.key, topic, encode(message)))

    def events(self) -> list[Any]:
        return self.store.pending_events(100)


@pytest.fixture(scope="module")
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def rig(tmp_path: Path, server_key: Ed25519PrivateKey) -> Iterator[Rig]:
    made = Rig(tmp_path / "terminal.db", server_key, {1, 2})
    yield made
    made.store.close()


def test_open_door_pulses_like_a_grant_and_records_a_remote_event(rig: Rig) -> None:
    assert rig.send(command(door=2)) is True
    assert [(door, unlocked) for _, door, unlocked in rig.relay.history] == [(2, True)]
    [event] = rig.events()
    assert (event.door, event.method, event.decision, event.reason) == (
        2,
        EntryMethod.REMOTE,
        Decision.GRANT,
        REMOTE_OPEN,
    )
    assert [(r.ref, r.outcome) for r in rig.replies] == [(REF, CommandOutcome.OPENED)]


def test_open_door_for_a_door_not_served_opens_nothing(rig: Rig) -> None:
    assert rig.send(command(door=9)) is False
    assert rig.relay.history == [] and rig.events() == []
    assert [r.outcome for r in rig.replies] == [CommandOutcome.NO_SUCH_DOOR]


def test_resync_asks_the_runtime_to_announce_again(rig: Rig) -> None:
    rig.send(command(CommandOp.RESYNC))
    assert rig.resyncs == 1
    assert [r.outcome for r in rig.replies] == [CommandOutcome.RESYNCING]


@pytest.mark.parametrize(
    "how",
    ["unsigned", "forged", "other_topic", "other_terminal", "other_site", "expired", "garbage"],
)
def test_nothing_but_a_genuine_timely_command_for_this_terminal_is_acted_on(
    rig: Rig, server_key: Ed25519PrivateKey, how: str
) -> None:
    if how == "unsigned":
        acted = rig.commands.handle(TOPIC, encode(command()))
    elif how == "forged":
        acted = rig.send(command(), key=Ed25519PrivateKey.generate())
    elif how == "other_topic":
        # Signed for terminal t-2's topic and replayed onto ours: the signature binds the topic.
        other = terminal_topic(SITE, "t-2", Channel.COMMAND)
        acted = rig.commands.handle(TOPIC, sign(server_key, other, encode(command(terminal="t-2"))))
    elif how == "other_terminal":
        acted = rig.send(command(terminal="t-2"))
    elif how == "other_site":
        acted = rig.send(command(site="oak"))
    elif how == "expired":
        acted = rig.send(command(expires_at=NOW))
    else:
        acted = rig.commands.handle(TOPIC, sign(server_key, TOPIC, b'{"type": "command"}'))
    assert acted is False
    assert rig.relay.history == [] and rig.events() == [] and rig.replies == []


def test_a_command_is_acted_on_once_even_across_a_restart(rig: Rig) -> None:
    message = command()
    assert rig.send(message) is True
    assert rig.send(message) is False
    rig.restart()
    assert rig.send(message) is False
    assert len(rig.events()) == 1 and len(rig.replies) == 1
    # Refs are forgotten once their command has expired, when expiry alone refuses them.
    rig.clock.now = NOW + timedelta(minutes=5)
    rig.send(command(ref="cd" * 16, expires_at=rig.clock.now + timedelta(seconds=15)))
    assert REF not in rig.store.state("command_refs")  # type: ignore[operator]


def test_capture_takes_the_next_card_instead_of_deciding_it(rig: Rig) -> None:
    rig.send(command(CommandOp.CAPTURE_CARD))
    assert rig.replies == []
    # Other ways in are decided as usual.
    assert rig.commands.take(CodeEntered(1, "123456")) is None
    shown = rig.commands.take(CardPresented(1, "04:a2:b3:c4:d5:e6:f7"))
    assert shown == {"door": 1, "granted": False, "captured": True, "message": CAPTURED_MESSAGE}
    [reply] = rig.replies
    assert (reply.ref, reply.outcome, reply.uid) == (REF, CommandOutcome.CAPTURED, UID)
    assert rig.relay.history == [] and rig.events() == []
    # Only the one card: the next is decided again.
    assert rig.commands.take(CardPresented(1, UID)) is None


def test_capture_of_a_card_with_an_impossible_uid_answers_bad_uid(rig: Rig) -> None:
    rig.send(command(CommandOp.CAPTURE_CARD))
    assert rig.commands.take(CardPresented(1, "nonsense")) is not None
    assert [(r.outcome, r.uid) for r in rig.replies] == [(CommandOutcome.BAD_UID, None)]


def test_capture_times_out_and_cards_are_decided_again(rig: Rig) -> None:
    rig.send(command(CommandOp.CAPTURE_CARD))
    rig.commands.tick()
    assert rig.replies == []
    rig.clock.now = NOW + timedelta(seconds=15)
    assert rig.commands.take(CardPresented(1, UID)) is None
    assert [r.outcome for r in rig.replies] == [CommandOutcome.TIMEOUT]
    rig.commands.tick()
    assert len(rig.replies) == 1


def test_a_newer_capture_supersedes_the_armed_one(rig: Rig) -> None:
    rig.send(command(CommandOp.CAPTURE_CARD))
    rig.send(command(CommandOp.CAPTURE_CARD, ref="cd" * 16))
    rig.commands.take(CardPresented(1, UID))
    assert [(r.ref, r.outcome) for r in rig.replies] == [
        (REF, CommandOutcome.SUPERSEDED),
        ("cd" * 16, CommandOutcome.CAPTURED),
    ]
