"""terminals.supervision and the lock hook of terminals.doors: alarm events and the published door states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gatehouse_core.wire.base import decode, encode
from gatehouse_core.wire.messages import Decision, DoorState, DoorStates, EventBatch
from terminals.door_inputs import Signal
from terminals.doors import DoorController
from terminals.relay import SimulatedRelay
from terminals.supervision import DOOR_ALARM_METHOD, DoorSupervisor

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def supervisor() -> DoorSupervisor:
    return DoorSupervisor("t-1", {1: 10.0, 2: None}, 0.0, clock=WallClock())


def test_forced_open_raises_one_alarm_event_the_server_can_take() -> None:
    sup = supervisor()
    sup.message()
    (alarm,) = sup.signal(1, Signal.OPENED, 5.0)
    assert (alarm.door, alarm.decision, alarm.reason, alarm.method) == (
        1,
        Decision.ALARM,
        "door_forced",
        DOOR_ALARM_METHOD,
    )
    assert alarm.person is None and alarm.pass_id is None
    EventBatch.model_validate_json(encode(EventBatch(terminal="t-1", events=(alarm,))))
    assert sup.changed and sup.state(1) == "forced_open"
    assert sup.signal(1, Signal.CLOSED, 6.0) == []
    assert sup.state(1) == "locked"


def test_held_open_alarm_after_the_limit_and_none_for_a_granted_opening() -> None:
    sup = supervisor()
    assert sup.lock_changed(1, True, 1.0) == []
    assert sup.signal(1, Signal.OPENED, 2.0) == []
    assert sup.lock_changed(1, False, 4.0) == []
    assert sup.tick(11.9) == []
    (alarm,) = sup.tick(12.0)
    assert (alarm.reason, alarm.decision) == ("door_held_open", Decision.ALARM)
    assert sup.tick(30.0) == []


def test_a_door_found_open_when_the_inputs_start_is_open_not_forced() -> None:
    sup = supervisor()
    assert sup.signal(1, Signal.OPENED, 1.0, initial=True) == []
    assert sup.state(1) == "open"
    (alarm,) = sup.tick(11.0)
    assert alarm.reason == "door_held_open"


def test_an_exit_signal_is_left_to_the_loop() -> None:
    sup = supervisor()
    sup.message()
    assert sup.signal(1, Signal.EXIT, 1.0) == []
    assert not sup.changed


def test_signals_for_unknown_doors_are_ignored_and_unlocked_doors_appear() -> None:
    sup = supervisor()
    assert sup.signal(7, Signal.OPENED, 1.0) == []
    assert sup.state(7) is None
    sup.lock_changed(7, True, 1.0)
    assert sup.states() == {"1": "locked", "2": "locked", "7": "unlocked"}
    assert not sup.supervised(7) and sup.supervised(1) and not sup.supervised(2)


def test_the_message_lists_every_door_with_when_it_changed_and_clears_changed() -> None:
    sup = supervisor()
    sup.lock_changed(2, True, 1.0)
    message = sup.message()
    assert not sup.changed
    assert decode(DoorStates, encode(message)) == message
    by_door = {d.door: d for d in message.doors}
    assert (by_door[1].state, by_door[1].supervised) == (DoorState.LOCKED, True)
    assert (by_door[2].state, by_door[2].supervised) == (DoorState.UNLOCKED, False)
    assert by_door[2].since > by_door[1].since
    assert message.terminal == "t-1" and message.at > by_door[2].since


def test_door_controller_reports_each_switch_whatever_unlocked_it() -> None:
    heard: list[tuple[int, bool, float]] = []
    doors = DoorController(SimulatedRelay(), 3.0, lambda door, unlocked, now: heard.append((door, unlocked, now)))
    doors.open(1, 10.0)
    doors.open(1, 11.0)  # extends the pulse: no second switch
    doors.tick(13.5)
    doors.tick(14.0)
    assert heard == [(1, True, 10.0), (1, False, 14.0)]
