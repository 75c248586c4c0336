"""terminals.relay: the simulated relay's record, and the GPIO relay against a fake libgpiod v2 module.

There is no GPIO hardware where these tests run, so `gpiod` is a small stand-in injected through
sys.modules that records the lines requested and the values driven, with libgpiod v2's names.
"""

from __future__ import annotations

import enum
import logging
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from terminals.relay import INSTALL_HINT, GpioRelay, Relay, SimulatedRelay

CHIP = "/dev/gpiochip0"
LINES = {1: 17, 2: 27}


# ---- SimulatedRelay ---------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_simulated_relay_records_and_logs_each_change(caplog: pytest.LogCaptureFixture) -> None:
    relay: Relay = SimulatedRelay(clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="terminals.relay"):
        relay.set(1, True)
        relay.set(2, True)
        relay.set(1, False)
    assert isinstance(relay, SimulatedRelay)
    assert relay.history == [(51.0, 1, True), (52.0, 2, True), (53.0, 1, False)]
    assert [r.getMessage() for r in caplog.records] == ["door 1 unlocked", "door 2 unlocked", "door 1 locked"]


def test_simulated_relay_locks_what_is_left_unlocked_on_close() -> None:
    relay = SimulatedRelay(clock=FakeClock())
    relay.set(1, True)
    relay.set(2, True)
    relay.set(2, False)
    relay.close()
    assert relay.history[-1][1:] == (1, False)
    assert len(relay.history) == 4
    relay.close()
    assert len(relay.history) == 4


def test_simulated_relay_keeps_a_bounded_history() -> None:
    relay = SimulatedRelay(max_history=3, clock=FakeClock())
    for door in range(1, 6):
        relay.set(door, True)
    assert [door for _, door, _ in relay.history] == [3, 4, 5]
    assert len(SimulatedRelay().history) == 0


# ---- GpioRelay with a fake gpiod ----------------------------------------------------------------------------------


class Direction(enum.Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Value(enum.Enum):
    INACTIVE = 0
    ACTIVE = 1


@dataclass(frozen=True, kw_only=True)
class LineSettings:
    direction: Direction = Direction.AS_IS
    output_value: Value = Value.INACTIVE
    active_low: bool = False


class FakeRequest:
    """A line request: the logical value of each requested line, as the kernel would hold it."""

    def __init__(self, config: dict[int, LineSettings]) -> None:
        self.settings = config
        self.values = {offset: settings.output_value for offset, settings in config.items()}
        self.released = False
        self.calls: list[tuple[int, Value]] = []

    def set_value(self, offset: int, value: Value) -> None:
        if self.released:
            raise RuntimeError("request released")
        if offset not in self.values:
            raise ValueError(f"line {offset} not requested")
        self.calls.append((offset, value))
        self.values[offset] = value

    def release(self) -> None:
        self.released = True


class FakeGpiod(types.ModuleType):
    """The parts of libgpiod v2's Python bindings GpioRelay uses."""

    def __init__(self) -> None:
        super().__init__("gpiod")
        self.line = types.ModuleType("gpiod.line")
        self.line.Direction = Direction  # type: ignore[attr-defined]
        self.line.Value = Value  # type: ignore[attr-defined]
        self.LineSettings = LineSettings
        self.requests: list[tuple[str, str, FakeRequest]] = []

    def request_lines(self, path: str, *, consumer: str, config: dict[Any, LineSettings]) -> FakeRequest:
        assert all(isinstance(offset, int) for offset in config), "one entry per line offset"
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


@pytest.mark.parametrize("active_low", [False, True])
def test_gpio_relay_requests_every_door_line_as_a_locked_output(gpiod: FakeGpiod, active_low: bool) -> None:
    GpioRelay(CHIP, LINES, active_low=active_low)
    request = only_request(gpiod)
    assert set(request.settings) == {17, 27}
    for settings in request.settings.values():
        assert settings == LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE, active_low=active_low)
    assert request.values == {17: Value.INACTIVE, 27: Value.INACTIVE}


def test_gpio_relay_drives_the_door_line_active_to_unlock(gpiod: FakeGpiod) -> None:
    relay: Relay = GpioRelay(CHIP, LINES)
    request = only_request(gpiod)
    relay.set(2, True)
    assert request.values == {17: Value.INACTIVE, 27: Value.ACTIVE}
    relay.set(1, True)
    relay.set(2, False)
    assert request.values == {17: Value.ACTIVE, 27: Value.INACTIVE}
    assert request.calls == [(27, Value.ACTIVE), (17, Value.ACTIVE), (27, Value.INACTIVE)]


def test_gpio_relay_close_locks_every_door_and_releases_the_lines(gpiod: FakeGpiod) -> None:
    relay = GpioRelay(CHIP, LINES)
    request = only_request(gpiod)
    relay.set(1, True)
    relay.close()
    assert request.values == {17: Value.INACTIVE, 27: Value.INACTIVE}
    assert request.released
    relay.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        relay.set(1, True)


def test_gpio_relay_releases_the_lines_even_if_locking_fails(gpiod: FakeGpiod) -> None:
    relay = GpioRelay(CHIP, LINES)
    request = only_request(gpiod)

    def broken(offset: int, value: Value) -> None:
        raise OSError("chip gone")

    request.set_value = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="chip gone"):
        relay.close()
    assert request.released


def test_gpio_relay_refuses_a_door_without_a_line(gpiod: FakeGpiod) -> None:
    relay = GpioRelay(CHIP, LINES)
    with pytest.raises(ValueError, match=r"door 9 has no relay line on /dev/gpiochip0 \(doors with one: 1, 2\)"):
        relay.set(9, True)
    assert only_request(gpiod).calls == []


@pytest.mark.parametrize(
    ("lines", "message"),
    [({}, "at least one door"), ({1: 17, 2: 17}, "share a GPIO line")],
    ids=["no-doors", "shared-line"],
)
def test_gpio_relay_refuses_a_bad_line_map(gpiod: FakeGpiod, lines: dict[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GpioRelay(CHIP, lines)
    assert gpiod.requests == []


def test_gpio_relay_without_gpiod_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)  # makes `import gpiod` fail
    with pytest.raises(RuntimeError) as raised:
        GpioRelay(CHIP, LINES)
    assert str(raised.value) == INSTALL_HINT
    assert INSTALL_HINT == "the GPIO relay needs the gpiod package (libgpiod v2): pip install gpiod"


def test_gpio_relay_with_the_old_v1_bindings_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", types.ModuleType("gpiod"))  # v1 has Chip and Line, no request_lines
    with pytest.raises(RuntimeError, match=r"pip install gpiod \(the installed gpiod is the older v1 API\)"):
        GpioRelay(CHIP, LINES)
