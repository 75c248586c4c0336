"""Door supervision: each door's state machine, the alarms they raise and the state message the terminal publishes.

Owned by the terminal's loop. The loop tells it when a lock is released or engaged (every unlock goes through
DoorController, whatever caused it) and what the door inputs reported; it answers with alarm events for the
outbox and keeps whether the published door states are out of date.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from gatehouse_core.wire.messages import Decision, DoorStates, DoorStatus, EntryMethod, EventRecord
from terminals.door_inputs import Signal
from terminals.door_state import Change, DoorMachine

log = logging.getLogger(__name__)

# The event record needs a method, and the server stores only the methods it knows (a CHECK constraint), none of
# them "door sensor". Until the wire and the server's table gain one, door alarms say "remote": no person
# presented anything; the reason (door_forced, door_held_open) says what happened.
DOOR_ALARM_METHOD = EntryMethod.REMOTE


class DoorSupervisor:
    """Every door's machine; doors not configured appear (unsupervised) when first unlocked."""

    def __init__(
        self,
        terminal: str,
        held_open_s: dict[int, float | None],
        now: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.terminal = terminal
        self._clock = clock
        self._machines = {door: DoorMachine(limit, now) for door, limit in sorted(held_open_s.items())}
        self._since = {door: clock() for door in self._machines}
        self._modes: dict[int, str] = {}
        self.changed = True  # nothing published yet

    def _machine(self, door: int, now: float) -> DoorMachine:
        machine = self._machines.get(door)
        if machine is None:
            machine = self._machines[door] = DoorMachine(None, now)
            self._since[door] = self._clock()
            self.changed = True
        return machine

    def state(self, door: int) -> str | None:
        """A door's state, if the terminal knows the door."""
        machine = self._machines.get(door)
        return None if machine is None else machine.state.value

    def states(self) -> dict[str, str]:
        """Each door's state, by door id (for status)."""
        return {str(door): m.state.value for door, m in sorted(self._machines.items())}

    def supervised(self, door: int) -> bool:
        """Whether a door has a contact configured."""
        machine = self._machines.get(door)
        return machine is not None and machine.supervised

    def lock_changed(self, door: int, released: bool, now: float) -> list[EventRecord]:
        """A door's lock was released or engaged (the relay switched)."""
        machine = self._machine(door, now)
        change = machine.lock_released(now) if released else machine.lock_engaged(now)
        return self._changed(door, change)

    def set_mode(self, door: int, mode: str, held: bool, now: float) -> None:
        """A door's mode as published (normal, lockdown, emergency_release, scheduled_unlock) and whether it is held."""
        machine = self._machine(door, now)
        machine.set_held(held, now)
        if self._modes.get(door, "normal") != mode:
            self._modes[door] = mode
            self.changed = True

    def mode(self, door: int) -> str:
        """A door's mode as published."""
        return self._modes.get(door, "normal")

    def signal(self, door: int, signal: Signal, now: float, *, initial: bool = False) -> list[EventRecord]:
        """A contact reading, `initial` if the driver's first (an exit request is the loop's: it releases the lock)."""
        machine = self._machines.get(door)
        if signal is Signal.EXIT or machine is None:
            return []
        is_open = signal is Signal.OPENED
        return self._changed(door, machine.found(is_open, now) if initial else machine.contact(is_open, now))

    def tick(self, now: float) -> list[EventRecord]:
        """Held-open limits that ran out."""
        alarms: list[EventRecord] = []
        for door, machine in self._machines.items():
            alarms += self._changed(door, machine.tick(now))
        return alarms

    def _changed(self, door: int, change: Change | None) -> list[EventRecord]:
        if change is None:
            return []
        at = self._clock()
        self._since[door] = at
        self.changed = True
        if change.alarm is None:
            log.info("door %d %s", door, change.state.value)
            return []
        log.warning("door %d %s: alarm %s", door, change.state.value, change.alarm)
        return [
            EventRecord(
                uid=str(uuid.uuid4()),
                door=door,
                method=DOOR_ALARM_METHOD,
                decision=Decision.ALARM,
                reason=change.alarm,
                at=at,
            )
        ]

    def message(self) -> DoorStates:
        """Every door's state now, to publish (retained); marks the published states up to date."""
        self.changed = False
        return DoorStates(
            terminal=self.terminal,
            doors=tuple(
                DoorStatus(
                    door=door, state=m.state, supervised=m.supervised, since=self._since[door], mode=self.mode(door)
                )
                for door, m in sorted(self._machines.items())
            ),
            at=self._clock(),
        )
