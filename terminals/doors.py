"""Door state: each door is LOCKED or UNLOCKED-until-a-deadline; the loop pulses the relay through this."""

from __future__ import annotations

import enum
import logging

from terminals.relay import Relay

log = logging.getLogger(__name__)


class DoorState(enum.Enum):
    """Whether a door's lock is released."""

    LOCKED = "locked"
    UNLOCKED = "unlocked"


class DoorController:
    """Pulses doors open for a granted entry and locks them again when the pulse ends."""

    def __init__(self, relay: Relay, pulse_s: float) -> None:
        self.relay = relay
        self.pulse_s = pulse_s
        self._until: dict[int, float] = {}

    def state(self, door: int) -> DoorState:
        """Current state of one door."""
        return DoorState.UNLOCKED if door in self._until else DoorState.LOCKED

    def open(self, door: int, now: float) -> None:
        """Unlock for one pulse; a grant while already unlocked extends it."""
        if door not in self._until:
            self.relay.set(door, True)
        self._until[door] = now + self.pulse_s

    def tick(self, now: float) -> None:
        """Lock every door whose pulse has ended."""
        for door, until in list(self._until.items()):
            if now >= until:
                del self._until[door]
                self.relay.set(door, False)

    def close_all(self) -> None:
        """Lock everything (shutdown)."""
        for door in list(self._until):
            del self._until[door]
            self.relay.set(door, False)
