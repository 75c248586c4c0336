"""Every MQTT topic string Gatehouse uses is built and parsed here, and only here.

Layout: gatehouse/<site>/terminals/<terminal>/<channel>. Site codes and terminal ids are restricted to
[a-z0-9-] so that no identifier can smuggle MQTT wildcards or extra levels into a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "gatehouse"
_IDENT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class Channel(StrEnum):
    """What a terminal topic carries, and in which direction."""

    STATUS = "status"  # terminal -> all, retained: "online" / "offline" (last will)
    BIRTH = "birth"  # terminal -> server: applied sequence, roster hash, versions
    SYNC = "sync"  # server -> terminal: signed journal deltas and snapshots
    ACK = "ack"  # terminal -> server: applied sequence, per-item deletion acks
    EVENTS = "events"  # terminal -> server: access events from the local outbox
    COMMAND = "cmd"  # server -> terminal, signed: open a door, resync, capture a card; never retained
    REPLY = "reply"  # terminal -> server: the outcome of a command (and a captured card's UID); never retained
    RECEIPT = "receipt"  # server -> terminal, signed: events stored and erasures recorded, so it may purge
    DOORS = "doors"  # terminal -> all, retained: each door's supervised state (DoorStates), on change and connect


STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"


class TopicError(ValueError):
    """An identifier or topic does not fit the Gatehouse layout."""


def check_ident(value: str, what: str) -> str:
    """Validate a site code or terminal id for use as one topic level."""
    if not _IDENT.fullmatch(value):
        raise TopicError(
            f"{what} {value!r} must be 1-64 characters of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    return value


def terminal_topic(site: str, terminal: str, channel: Channel) -> str:
    """Topic of one channel of one terminal."""
    return f"{ROOT}/{check_ident(site, 'site code')}/terminals/{check_ident(terminal, 'terminal id')}/{channel.value}"


def server_status() -> str:
    """Retained availability of the server's worker; terminals re-announce themselves when it comes online."""
    return f"{ROOT}/server/status"


def everything() -> str:
    """Subscription filter for every Gatehouse topic (the server's broker account reads and writes it)."""
    return f"{ROOT}/#"


def all_terminals(channel: Channel, site: str | None = None) -> str:
    """Subscription filter for one channel of every terminal (of one site, or of all sites)."""
    site_level = "+" if site is None else check_ident(site, "site code")
    return f"{ROOT}/{site_level}/terminals/+/{channel.value}"


@dataclass(frozen=True)
class TopicRef:
    """A parsed terminal topic."""

    site: str
    terminal: str
    channel: Channel


def parse_topic(topic: str) -> TopicRef:
    """Parse a terminal topic; raise TopicError for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != ROOT or parts[2] != "terminals":
        raise TopicError(f"not a Gatehouse terminal topic: {topic!r}")
    try:
        channel = Channel(parts[4])
    except ValueError:
        raise TopicError(f"unknown channel in topic {topic!r}") from None
    return TopicRef(check_ident(parts[1], "site code"), check_ident(parts[3], "terminal id"), channel)
