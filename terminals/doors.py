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
        self._held: set[int] = set()  # held unlocked by the door's mode (emergency release, unlock schedule)
        self._on_change = on_change

    def state(self, door: int) -> DoorState:
        """Current state of one door."""
        return DoorState.UNLOCKED if door in self._until or door in self._held else DoorState.LOCKED

    def held(self, door: int) -> bool:
        """Whether the door's mode holds it unlocked."""
        return door in self._held

    def hold(self, door: int, unlocked: bool, now: float) -> None:
        """Hold a door unlocked until told otherwise (not a pulse), or end the hold (a pulse under way runs out)."""
        if unlocked == (door in self._held):
            return
        if unlocked:
            self._held.add(door)
        else:
            self._held.discard(door)
        if door in self._until:
            return
        self.relay.set(door, unlocked)
        if self._on_change is not None:
            self._on_change(door, unlocked, now)

    def open(self, door: int, now: float) -> None:
        """Unlock for one pulse; a grant while already unlocked extends it."""
        newly = door not in self._until and door not in self._held
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
                if door in self._held:
                    continue
                self.relay.set(door, False)
                if self._on_change is not None:
                    self._on_change(door, False, now)

    def close_all(self) -> None:
        """Lock everything (shutdown)."""
        for door in sorted(set(self._until) | self._held):
            self._until.pop(door, None)
            self._held.discard(door)
            self.relay.set(door, False)
