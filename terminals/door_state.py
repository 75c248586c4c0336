"""One door's supervised state, from its lock (released or engaged) and its door contact (open or closed).

Pure: every input carries the monotonic time it happened at, and nothing here reads a clock or touches a
device, so the terminal's loop owns it and tests drive it with any times they like.

- locked: closed, lock engaged. A contact opening now is **forced open** (alarm `door_forced`): nobody was
  granted and nobody pressed the exit button.
- unlocked: closed, lock released (a grant, an exit request, a console open) for the unlock time.
- open: opened while released. The held-open limit runs from the moment it opened; the lock engaging again
  (unlock time over) while it is still open changes nothing: the opening was authorised, so past the limit it
  is **held open** (alarm `door_held_open`), never forced.
- held open / forced open last until the contact closes (a grant meanwhile does not clear them).
- a door its mode holds unlocked (emergency release, unlock schedule) is released, so opening it is open, never
  forced, and it is not held open while the hold lasts; the limit runs from the hold's end.
- closing returns to locked, or to unlocked while the unlock time still runs.

A door without a contact is not supervised: it is only ever locked or unlocked. A contact's first reading (the
GPIO driver reads every contact when it starts) goes through `found`: a door found open counts as open
(authorised) from then, as its history is unknown, so only the held-open limit applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatehouse_core.wire.messages import DoorState

DOOR_FORCED = "door_forced"
DOOR_HELD_OPEN = "door_held_open"


@dataclass(frozen=True)
class Change:
    """A door entered a new state; `alarm` is the alarm reason it raises, if any."""

    state: DoorState
    alarm: str | None = None


class DoorMachine:
    """The state of one door; each input returns the change it caused, or None."""

    def __init__(self, held_open_s: float | None, now: float) -> None:
        """`held_open_s` None: the door has no contact and is not supervised. A door starts closed and locked."""
        if held_open_s is not None and held_open_s <= 0:
            raise ValueError("the held-open limit must be positive")
        self.held_open_s = held_open_s
        self.released = False
        self.held = False  # held unlocked by the door's mode: an opening is expected and never held open
        self.is_open = False
        self.opened_at = 0.0
        self.state = DoorState.LOCKED
        self.since = now

    @property
    def supervised(self) -> bool:
        """Whether the door has a contact."""
        return self.held_open_s is not None

    def _enter(self, state: DoorState, now: float, alarm: str | None = None) -> Change | None:
        if state is self.state:
            return None
        self.state, self.since = state, now
        return Change(state, alarm)

    def _closed_state(self) -> DoorState:
        return DoorState.UNLOCKED if self.released else DoorState.LOCKED

    def lock_released(self, now: float) -> Change | None:
        """The lock was released (relay active)."""
        self.released = True
        return None if self.is_open else self._enter(self._closed_state(), now)

    def lock_engaged(self, now: float) -> Change | None:
        """The lock engaged again (unlock time over); an open door stays as it is."""
        self.released = False
        return None if self.is_open else self._enter(self._closed_state(), now)

    def contact(self, is_open: bool, now: float) -> Change | None:
        """The door contact reads open or closed (repeats of the same reading change nothing)."""
        if not self.supervised or is_open == self.is_open:
            return None
        self.is_open = is_open
        if not is_open:
            return self._enter(self._closed_state(), now)
        self.opened_at = now
        if self.released:
            return self._enter(DoorState.OPEN, now)
        return self._enter(DoorState.FORCED_OPEN, now, DOOR_FORCED)

    def found(self, is_open: bool, now: float) -> Change | None:
        """The contact's first reading: an open door is open (not forced), its held-open limit running from now."""
        if not self.supervised or is_open == self.is_open:
            return None
        self.is_open = is_open
        if not is_open:
            return self._enter(self._closed_state(), now)
        self.opened_at = now
        return self._enter(DoorState.OPEN, now)

    def set_held(self, held: bool, now: float) -> None:
        """The door's mode holds it unlocked (or no longer): the held-open limit runs again from the hold's end."""
        if self.held and not held:
            self.opened_at = now
        self.held = held

    def tick(self, now: float) -> Change | None:
        """Time passed: an authorised opening past the held-open limit becomes held open."""
        if self.held:
            return None
        if self.state is DoorState.OPEN and self.held_open_s is not None and now - self.opened_at >= self.held_open_s:
            return self._enter(DoorState.HELD_OPEN, now, DOOR_HELD_OPEN)
        return None
