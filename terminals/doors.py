"""Door state: each door is LOCKED or UNLOCKED-until-a-deadline; the loop pulses the relay through this."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from terminals.relay import Relay

log = logging.getLogger(__name__)


class DoorState(enum.Enum):
    """Whether a door's lock is released."""

    LOCKED = "locked"
    UNLOCKED = "unlocked"


class DoorController:
    """Pulses doors open for a granted entry and locks them again when the pulse ends."""

    def __init__(
        self, relay: Relay, pulse_s: float, on_change: Callable[[int, bool, float], None] | None = None
    ) -> None:
        """`on_change(door, unlocked, now)` hears of every switch (door supervision), whatever unlocked the door."""
        self.relay = relay
        self.pulse_s = pulse_s
        self._until: dict[int, float] = {}
        self._on_change = on_change

    def state(self, door: int) -> DoorState:
        """Current state of one door."""
        return DoorState.UNLOCKED if door in self._until else DoorState.LOCKED

    def open(self, door: int, now: float) -> None:
        """Unlock for one pulse; a grant while already unlocked extends it."""
        newly = door not in self._until
        if newly:
            self.relay.set(door, True)
        self._until[door] = now + self.pulse_s
        if newly and self._on_change is not None:
            self._on_change(door, True, now)

    def tick(self, now: float) -> None:
        """Lock every door whose pulse has ended."""
        for door, until in list(self._until.items()):
            if now >= until:
                del self._until[door]
                self.relay.set(door, False)
                if self._on_change is not None:
                    self._on_change(door, False, now)

    def close_all(self) -> None:
        """Lock everything (shutdown)."""
        for door in list(self._until):
            del self._until[door]
            self.relay.set(door, False)
