"""terminals.door_inputs: the simulated contacts and exit buttons, and the GPIO ones against a fake libgpiod v2.

There is no GPIO hardware, no gpiod package and no gpio-sim (configfs) where these tests run, so `gpiod` is a
small stand-in injected through sys.modules, with libgpiod v2's names, that queues edge events as the kernel
would after debouncing.
"""

from __future__ import annotations

import enum
import queue
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from terminals.door_inputs import INSTALL_HINT, DoorLines, DoorSignal, GpioDoorInputs, Signal, SimulatedDoorInputs

CHIP = "/dev/gpiochip0"
LINES = [DoorLines(1, contact=5, rex=6, contact_active_low=True), DoorLines(2, rex=7)]


# ---- SimulatedDoorInputs ------------------------------------------------------------------------------------------


def test_simulated_inputs_emit_what_the_person_at_the_door_does() -> None:
    heard: list[DoorSignal] = []
    inputs = SimulatedDoorInputs(LINES)
    inputs.start(heard.append)
    reply: Future[dict[str, Any]] = Future()
    inputs.drive(1, "open", reply)
    inputs.drive(1, "close")
    inputs.drive(2, "exit")
    assert heard == [DoorSignal(1, Signal.OPENED), DoorSignal(1, Signal.CLOSED), DoorSignal(2, Signal.EXIT)]
    assert heard[0].reply is reply


@pytest.mark.parametrize(
    ("door", "action", "message"),
    [
        (2, "open", r"door 2 has no door contact .*doors with one: \[1\]"),
        (3, "exit", r"door 3 has no exit button .*doors with one: \[1, 2\]"),
    ],
)
def test_simulated_inputs_refuse_an_input_the_door_lacks(door: int, action: Any, message: str) -> None:
    inputs = SimulatedDoorInputs(LINES)
    inputs.start(lambda signal: None)
    with pytest.raises(ValueError, match=message):
        inputs.drive(door, action)


def test_stopped_simulated_inputs_refuse_to_drive() -> None:
    inputs = SimulatedDoorInputs(LINES)
    with pytest.raises(ValueError, match="not running"):
        inputs.drive(1, "open")


# ---- GpioDoorInputs with a fake gpiod ------------------------------------------------------------------------------


class Direction(enum.Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Edge(enum.Enum):
    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Value(enum.Enum):
    INACTIVE = 0
    ACTIVE = 1


class EdgeType(enum.Enum):
    RISING_EDGE = 1
    FALLING_EDGE = 2


@dataclass(frozen=True, kw_only=True)
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    active_low: bool = False
    debounce_period: timedelta = timedelta()


@dataclass(frozen=True)
class EdgeEvent:
    event_type: EdgeType
    line_offset: int


class FakeRequest:
    """A line request: logical levels and a queue of edge events, as the kernel keeps them."""

    def __init__(self, config: dict[int, LineSettings]) -> None:
        self.settings = config
        self.values = dict.fromkeys(config, Value.INACTIVE)
        self.edges: list[EdgeEvent] = []
        self.waiting = threading.Condition()
        self.released = False

    def get_values(self, offsets: list[int]) -> list[Value]:
        return [self.values[offset] for offset in offsets]

    def wait_edge_events(self, timeout: timedelta) -> bool:
        with self.waiting:
            return self.waiting.wait_for(lambda: bool(self.edges), timeout.total_seconds())

    def read_edge_events(self) -> list[EdgeEvent]:
        with self.waiting:
            events, self.edges = self.edges, []
        return events

    def edge(self, offset: int, rising: bool) -> None:
        with self.waiting:
            self.edges.append(EdgeEvent(EdgeType.RISING_EDGE if rising else EdgeType.FALLING_EDGE, offset))
            self.waiting.notify_all()

    def release(self) -> None:
        self.released = True


class FakeGpiod(types.ModuleType):
    """The parts of libgpiod v2's Python bindings GpioDoorInputs uses."""

    def __init__(self) -> None:
        super().__init__("gpiod")
        self.line = types.ModuleType("gpiod.line")
        self.line.Direction = Direction  # type: ignore[attr-defined]
        self.line.Edge = Edge  # type: ignore[attr-defined]
        self.line.Value = Value  # type: ignore[attr-defined]
        self.EdgeEvent = types.SimpleNamespace(Type=EdgeType)
        self.LineSettings = LineSettings
        self.requests: list[tuple[str, str, FakeRequest]] = []

    def request_lines(self, path: str, *, consumer: str, config: dict[Any, LineSettings]) -> FakeRequest:
        request = FakeRequest(config)
        self.requests.append((path, consumer, request))
        return request


@pytest.fixture
def gpiod(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGpiod]:
    fake = FakeGpiod()
    monkeypatch.setitem(sys.modules, "gpiod", fake)
    yield fake


def only_request(gpiod: FakeGpiod) -> FakeRequest:
    ((path, consumer, request),) = gpiod.requests
    assert (path, consumer) == (CHIP, "gatehouse")
    return request


class Heard:
    """Signals emitted from the watcher thread, waited for without sleeping on wall time."""

    def __init__(self) -> None:
        self.signals: queue.Queue[DoorSignal] = queue.Queue()

    def __call__(self, signal: DoorSignal) -> None:
        self.signals.put(signal)

    def next(self) -> DoorSignal:
        return self.signals.get(timeout=10)


def test_gpio_inputs_request_debounced_edge_detecting_input_lines(gpiod: FakeGpiod) -> None:
    GpioDoorInputs(CHIP, LINES, debounce_ms=40)
    request = only_request(gpiod)
    debounce = timedelta(milliseconds=40)
    assert request.settings == {
        5: LineSettings(direction=Direction.INPUT, edge_detection=Edge.BOTH, active_low=True, debounce_period=debounce),
        6: LineSettings(direction=Direction.INPUT, edge_detection=Edge.RISING, debounce_period=debounce),
        7: LineSettings(direction=Direction.INPUT, edge_detection=Edge.RISING, debounce_period=debounce),
    }


def test_gpio_inputs_report_the_contacts_then_each_edge_and_release_on_stop(gpiod: FakeGpiod) -> None:
    inputs = GpioDoorInputs(CHIP, LINES)
    request = only_request(gpiod)
    request.values[5] = Value.ACTIVE  # door 1 is open at start
    heard = Heard()
    inputs.start(heard)
    try:
        assert heard.next() == DoorSignal(1, Signal.OPENED, initial=True)
        request.edge(5, rising=False)
        assert heard.next() == DoorSignal(1, Signal.CLOSED)
        request.edge(7, rising=True)
        request.edge(7, rising=False)  # a button's release is not a second request
        request.edge(6, rising=True)
        assert heard.next() == DoorSignal(2, Signal.EXIT)
        assert heard.next() == DoorSignal(1, Signal.EXIT)
        request.edge(5, rising=True)
        assert heard.next() == DoorSignal(1, Signal.OPENED)
    finally:
        inputs.stop()
    assert request.released
    assert heard.signals.empty()
    inputs.stop()  # stopping twice is harmless


def test_gpio_inputs_stop_watching_when_the_chip_fails(gpiod: FakeGpiod, caplog: pytest.LogCaptureFixture) -> None:
    inputs = GpioDoorInputs(CHIP, [DoorLines(1, rex=6)])
    request = only_request(gpiod)
    failed = threading.Event()

    def broken(timeout: timedelta) -> bool:
        failed.set()
        raise OSError("chip gone")

    request.wait_edge_events = broken  # type: ignore[method-assign]
    inputs.start(Heard())
    assert failed.wait(10)
    inputs.stop()
    assert request.released


@pytest.mark.parametrize(
    ("doors", "message"),
    [([], "at least one"), ([DoorLines(1, contact=5), DoorLines(2, rex=5)], "share a GPIO line")],
    ids=["no-lines", "shared-line"],
)
def test_gpio_inputs_refuse_a_bad_line_map(gpiod: FakeGpiod, doors: list[DoorLines], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GpioDoorInputs(CHIP, doors)
    assert gpiod.requests == []


def test_gpio_inputs_without_gpiod_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)
    with pytest.raises(RuntimeError) as info:
        GpioDoorInputs(CHIP, LINES)
    assert str(info.value) == INSTALL_HINT
