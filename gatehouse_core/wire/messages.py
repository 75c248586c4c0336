"""Message schemas of the server-terminal link, version 1, parsed at the edge into frozen models.

Server to terminal (signed, see `signing`): Delta (journal changes in a sequence range), SnapshotPart
(a whole roster in parts), InSync (the answer to a birth is complete), Receipt (events stored, erasures
recorded) and Command (open a door, resync, capture a card). Terminal to server (the broker authenticates
the terminal and its ACL pins the topic): Birth, Ack, EventBatch and CommandReply; and DoorStates, retained,
so that whoever subscribes learns each door's state at once.

A birth may carry a nonce, new on every connection. The server answers it on the sync topic with what the
terminal lacks and then an InSync echoing the nonce: MQTT keeps one topic in order, so once the terminal
has applied up to InSync.seq it holds every deletion made before it asked, and may match faces again.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from gatehouse_core.wire.base import MAX_MESSAGE_BYTES, MessageError, WireModel, decode, encode
from gatehouse_core.wire.records import MAX_INT, EventUid, Ident, Pseudonym, Record, Removal

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Ack",
    "Birth",
    "Command",
    "CommandOp",
    "CommandOutcome",
    "CommandReply",
    "Decision",
    "Delta",
    "DoorState",
    "DoorStates",
    "DoorStatus",
    "EntryMethod",
    "Erased",
    "EventBatch",
    "EventRecord",
    "InSync",
    "MessageError",
    "Receipt",
    "SnapshotPart",
    "decode",
    "encode",
]

WIRE_VERSION: Literal[1] = 1
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(2100, 1, 1, tzinfo=UTC)
_PSEUDONYM = re.compile(r"p-[0-9a-f]{16}")
MAX_EVENTS_PER_BATCH = 500

TerminalId = Annotated[str, Field(min_length=1, max_length=64)]
Seq = Annotated[int, Field(ge=0, le=MAX_INT)]
Uid = EventUid
RosterHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Nonce = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class Birth(WireModel):
    """What a terminal announces on every connect, so the server can send what it lacks."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["birth"] = "birth"
    terminal: TerminalId
    applied_seq: Seq
    roster_hash: RosterHash
    software: Annotated[str, Field(max_length=64)]
    face_models: tuple[Annotated[str, Field(max_length=64)], ...] = ()
    # New on each connection (absent from older terminals); the server's InSync echoes it.
    nonce: Nonce | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_nonce(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Without a nonce a birth encodes exactly as before, which servers that forbid unknown fields accept.
        data: dict[str, Any] = handler(self)
        if data.get("nonce") is None:
            data.pop("nonce", None)
        return data


class _Parts(WireModel):
    part: Annotated[int, Field(ge=1)]
    parts: Annotated[int, Field(ge=1, le=100_000)]

    @model_validator(mode="after")
    def _part_in_range(self) -> _Parts:
        if self.part > self.parts:
            raise ValueError("part number beyond the number of parts")
        return self


class Delta(_Parts):
    """Changes of journal range (base_seq, seq] for one terminal: removals first, then records.

    A terminal applies it only if base_seq equals what it has applied; the range may span several parts,
    and the terminal's applied sequence moves to `seq` with the last one.
    """

    v: Literal[1] = WIRE_VERSION
    type: Literal["delta"] = "delta"
    site: TerminalId
    terminal: TerminalId
    base_seq: Seq
    seq: Seq
    removals: tuple[Removal, ...] = ()
    records: tuple[Record, ...] = ()

    @model_validator(mode="after")
    def _forward(self) -> Delta:
        if self.seq <= self.base_seq:
            raise ValueError("a delta must move the sequence forward")
        return self


class SnapshotPart(WireModel):
    """One part of a terminal's complete roster as of journal sequence `seq`.

    Parts are numbered from 1 and streamed as the server builds them; the last one carries the hash of
    the whole roster, which the terminal checks before swapping the staged roster in.
    """

    v: Literal[1] = WIRE_VERSION
    type: Literal["snapshot"] = "snapshot"
    site: TerminalId
    terminal: TerminalId
    snapshot_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    seq: Seq
    part: Annotated[int, Field(ge=1, le=1_000_000)]
    last: bool
    roster_hash: RosterHash | None = None
    records: tuple[Record, ...] = ()

    @model_validator(mode="after")
    def _hash_on_last(self) -> SnapshotPart:
        if self.last != (self.roster_hash is not None):
            raise ValueError("the last part, and only the last, carries the roster hash")
        return self


class InSync(WireModel):
    """Everything up to `seq` was sent to this terminal before this message, in answer to the birth `nonce`."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["in_sync"] = "in_sync"
    site: TerminalId
    terminal: TerminalId
    seq: Seq
    nonce: Nonce


class Erased(WireModel):
    """One item a terminal deleted: a person (pseudonym) or a face template (id)."""

    kind: Literal["person", "template"]
    ref: Annotated[str, Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _ref_fits_kind(self) -> Erased:
        if self.kind == "template" and not (self.ref.isascii() and self.ref.isdigit() and 0 < int(self.ref) <= MAX_INT):
            raise ValueError("a template reference is its id, a positive 32-bit number")
        if self.kind == "person" and not _PSEUDONYM.fullmatch(self.ref):
            raise ValueError("a person reference is their pseudonym")
        return self


class Ack(WireModel):
    """What a terminal has applied, and each item it erased while doing so."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["ack"] = "ack"
    terminal: TerminalId
    applied_seq: Seq
    erased: tuple[Erased, ...] = ()


class EntryMethod(enum.StrEnum):
    """How someone presented themselves at a door."""

    FACE = "face"
    CARD = "card"
    ID_DOCUMENT = "id_document"
    APP_CODE = "app_code"
    VISITOR_CODE = "visitor_code"
    VISITOR_QR = "visitor_qr"
    REMOTE = "remote"


class Decision(enum.StrEnum):
    """Outcome of one presentation."""

    GRANT = "grant"
    DENY = "deny"
    # Not a presentation's outcome: the terminal raises it (e.g. a keypad locked out after wrong codes).
    ALARM = "alarm"


class EventRecord(WireModel):
    """One decision at a door: who (pseudonym or pass), how, where, the outcome and why; never an image."""

    uid: Uid
    door: Ident
    method: EntryMethod
    decision: Decision
    reason: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    person: Pseudonym | None = None
    pass_id: Ident | None = None
    at: AwareDatetime
    # Decided after the terminal had not heard from the server for its site's max_offline_hours.
    past_offline_bound: bool = False

    @model_validator(mode="after")
    def _plausible_time(self) -> EventRecord:
        # Far outside this range a clock is broken, and the server could not even store the value.
        if not EARLIEST_EVENT <= self.at <= LATEST_EVENT:
            raise ValueError("event time is outside 2000-2100")
        return self

    @model_serializer(mode="wrap")
    def _omit_within_bound(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An event decided within the bound encodes exactly as before, which servers that forbid unknown fields accept.
        data: dict[str, Any] = handler(self)
        if not data.get("past_offline_bound", True):
            data.pop("past_offline_bound")
        return data


class DoorState(enum.StrEnum):
    """A supervised door's state, from its lock and its door contact (terminals/door_state.py)."""

    LOCKED = "locked"  # closed and locked
    UNLOCKED = "unlocked"  # closed, lock released (a grant, an exit request, a console open)
    OPEN = "open"  # opened while released; within its held-open limit
    HELD_OPEN = "held_open"  # opened while released and still open past its held-open limit (alarm)
    FORCED_OPEN = "forced_open"  # opened while locked, without a grant or exit request (alarm)


class DoorStatus(WireModel):
    """One door's state and when it entered it; a door without a contact is only ever locked or unlocked."""

    door: Ident
    state: DoorState
    supervised: bool
    since: AwareDatetime
    # "normal", "lockdown", "emergency_release", or "scheduled_unlock" while an unlock schedule holds it open.
    mode: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] = "normal"


MAX_DOORS_PER_TERMINAL = 1000  # far more than one terminal serves; about 100 KB, well under MAX_MESSAGE_BYTES


class DoorStates(WireModel):
    """Every door of one terminal, published retained on each change and on each connect."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["doors"] = "doors"
    terminal: TerminalId
    doors: Annotated[tuple[DoorStatus, ...], Field(max_length=MAX_DOORS_PER_TERMINAL)]
    at: AwareDatetime


class EventBatch(WireModel):
    """Access events from a terminal's outbox, delivered until the server's receipt names them."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["events"] = "events"
    terminal: TerminalId
    events: Annotated[tuple[EventRecord, ...], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


class Receipt(WireModel):
    """The server stored (or refused for good) these events and recorded these erasures; purge them."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["receipt"] = "receipt"
    terminal: TerminalId
    events: tuple[Uid, ...] = ()
    rejected: tuple[Uid, ...] = ()
    erasures: tuple[Erased, ...] = ()


class CommandOp(enum.StrEnum):
    """What the server asks one terminal to do."""

    OPEN_DOOR = "open_door"
    RESYNC = "resync"
    # Read the next card presented at the terminal; the server enrolls it for the person it was asked for.
    CAPTURE_CARD = "capture_card"


class CommandOutcome(enum.StrEnum):
    """A terminal's answer to a command."""

    OPENED = "opened"
    NO_SUCH_DOOR = "no_such_door"
    RESYNCING = "resyncing"
    CAPTURED = "captured"  # the reply carries the card's UID
    BAD_UID = "bad_uid"  # a card was read, but its UID is not one a card can have
    TIMEOUT = "timeout"  # no card came before the command expired
    SUPERSEDED = "superseded"  # a newer capture took this one's place


# Normalised as credential_hash does it: upper-case hex of 4, 7 or 10 bytes.
CardUid = Annotated[str, Field(pattern=r"^(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$")]


class Command(WireModel):
    """One command for one terminal, valid until `expires_at`; `ref` names it in the reply and refuses a replay."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["command"] = "command"
    site: TerminalId
    terminal: TerminalId
    ref: Nonce
    op: CommandOp
    door: Ident | None = None
    expires_at: AwareDatetime

    @model_validator(mode="after")
    def _door_for_open(self) -> Command:
        if (self.op is CommandOp.OPEN_DOOR) != (self.door is not None):
            raise ValueError("an open_door command, and only one, names the door")
        return self


class CommandReply(WireModel):
    """What a terminal did with a command; a captured card's UID travels only here, to be hashed at once."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["reply"] = "reply"
    terminal: TerminalId
    ref: Nonce
    outcome: CommandOutcome
    uid: Annotated[CardUid | None, Field(repr=False)] = None

    @model_validator(mode="after")
    def _uid_when_captured(self) -> CommandReply:
        if (self.outcome is CommandOutcome.CAPTURED) != (self.uid is not None):
            raise ValueError("a captured card's reply, and only it, carries the UID")
        return self
