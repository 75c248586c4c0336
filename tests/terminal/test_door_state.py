"""terminals.door_state: every transition of a supervised door, with times given by the test (no clock)."""

from __future__ import annotations

import pytest

from gatehouse_core.wire.messages import DoorState
from terminals.door_state import DOOR_FORCED, DOOR_HELD_OPEN, Change, DoorMachine

HELD = 30.0


def door(now: float = 100.0) -> DoorMachine:
    return DoorMachine(HELD, now)


def test_a_door_starts_locked() -> None:
    machine = door()
    assert (machine.state, machine.since, machine.supervised) == (DoorState.LOCKED, 100.0, True)


def test_released_then_engaged_is_unlocked_then_locked() -> None:
    machine = door()
    assert machine.lock_released(101) == Change(DoorState.UNLOCKED)
    assert machine.since == 101
    assert machine.lock_engaged(104) == Change(DoorState.LOCKED)
    assert machine.state is DoorState.LOCKED


def test_opened_while_locked_is_forced_with_an_alarm() -> None:
    machine = door()
    assert machine.contact(True, 105) == Change(DoorState.FORCED_OPEN, DOOR_FORCED)
    # Forced stays forced: no held alarm on top, and a grant meanwhile does not make it authorised.
    assert machine.tick(105 + HELD * 3) is None
    assert machine.lock_released(200) is None
    assert machine.state is DoorState.FORCED_OPEN
    assert machine.lock_engaged(203) is None
    assert machine.contact(False, 210) == Change(DoorState.LOCKED)


def test_forced_door_closing_while_released_is_unlocked() -> None:
    machine = door()
    machine.contact(True, 105)
    machine.lock_released(106)
    assert machine.contact(False, 107) == Change(DoorState.UNLOCKED)


def test_opened_while_unlocked_is_open_without_alarm_and_closing_locks_again() -> None:
    machine = door()
    machine.lock_released(101)
    assert machine.contact(True, 102) == Change(DoorState.OPEN)
    assert machine.lock_engaged(104) is None  # the unlock time ends while the door is open: still open
    assert machine.state is DoorState.OPEN
    assert machine.contact(False, 110) == Change(DoorState.LOCKED)


def test_closing_before_the_unlock_time_ends_is_unlocked_until_it_does() -> None:
    machine = door()
    machine.lock_released(101)
    machine.contact(True, 102)
    assert machine.contact(False, 103) == Change(DoorState.UNLOCKED)
    assert machine.contact(True, 103.5) == Change(DoorState.OPEN)  # still released: a second opening is fine
    machine.contact(False, 103.8)
    assert machine.lock_engaged(104) == Change(DoorState.LOCKED)


def test_held_open_after_the_limit_from_the_opening_even_once_relocked() -> None:
    machine = door()
    machine.lock_released(101)
    machine.contact(True, 102)
    machine.lock_engaged(104)
    assert machine.tick(102 + HELD - 0.5) is None
    assert machine.tick(102 + HELD) == Change(DoorState.HELD_OPEN, DOOR_HELD_OPEN)
    assert machine.since == 102 + HELD
    assert machine.tick(102 + HELD * 2) is None  # raised once
    assert machine.contact(False, 200) == Change(DoorState.LOCKED)


def test_held_open_closing_while_released_is_unlocked() -> None:
    machine = door()
    machine.lock_released(101)
    machine.contact(True, 102)
    machine.tick(102 + HELD)
    machine.lock_released(140)  # a new grant: still held until it closes
    assert machine.state is DoorState.HELD_OPEN
    assert machine.contact(False, 141) == Change(DoorState.UNLOCKED)


def test_the_held_limit_restarts_with_each_opening() -> None:
    machine = door()
    machine.lock_released(101)
    machine.contact(True, 102)
    machine.contact(False, 120)
    machine.contact(True, 125)
    assert machine.tick(102 + HELD) is None
    assert machine.tick(125 + HELD) == Change(DoorState.HELD_OPEN, DOOR_HELD_OPEN)


@pytest.mark.parametrize("is_open", [True, False])
def test_a_repeated_reading_changes_nothing(is_open: bool) -> None:
    machine = door()
    machine.lock_released(101)
    machine.contact(is_open, 102)
    state = machine.state
    assert machine.contact(is_open, 103) is None
    assert machine.state is state


def test_a_door_found_open_at_start_counts_as_open_and_can_be_held() -> None:
    machine = door()
    assert machine.found(True, 101.0) == Change(DoorState.OPEN)
    assert machine.tick(101 + HELD) == Change(DoorState.HELD_OPEN, DOOR_HELD_OPEN)
    assert machine.contact(False, 200) == Change(DoorState.LOCKED)


def test_a_door_found_closed_at_start_stays_as_it_is() -> None:
    machine = door()
    assert machine.found(False, 101.0) is None
    assert machine.state is DoorState.LOCKED


def test_a_door_without_a_contact_is_only_locked_or_unlocked() -> None:
    machine = DoorMachine(None, 100.0)
    assert (machine.state, machine.supervised) == (DoorState.LOCKED, False)
    assert machine.found(True, 100.5) is None
    assert machine.contact(True, 101) is None
    assert machine.lock_released(102) == Change(DoorState.UNLOCKED)
    assert machine.tick(1000) is None
    assert machine.lock_engaged(105) == Change(DoorState.LOCKED)


def test_the_held_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        DoorMachine(0, 1.0)
