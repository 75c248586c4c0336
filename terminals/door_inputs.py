"""Door inputs: each door's contact (open/closed) and request-to-exit button, the inputs a terminal supervises.

`GpioDoorInputs` watches lines of a GPIO chip through libgpiod v2 (imported only when one is made, as the
relay does): edge events, debounced by the kernel, read on a thread of its own that only hands the loop a
`DoorSignal`. `SimulatedDoorInputs` is driven from the control socket (`gatehouse-terminal door open|close|exit`)
for the demo, the tests and the benchmark. Either way the loop decides what a signal means (door_state.py).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from terminals.relay import load_gpiod

log = logging.getLogger(__name__)

INSTALL_HINT = "GPIO door inputs need the gpiod package (libgpiod v2): pip install gpiod"
CONSUMER = "gatehouse"
WAIT_S = 0.2  # how long the watcher waits for edges before looking at its stop flag


class Signal(enum.Enum):
    """What a door input reported."""

    OPENED = "opened"  # the contact reads open
    CLOSED = "closed"  # the contact reads closed
    EXIT = "exit"  # the request-to-exit button was pressed


@dataclass(frozen=True)
class DoorSignal:
    """One door input's report, for the loop; `reply` is set for the control socket's simulated ones.

    `initial` marks a contact's first reading when the driver starts: an open door then is not forced.
    """

    door: int
    signal: Signal
    reply: Future[dict[str, Any]] | None = field(default=None, compare=False)
    initial: bool = False


Emit = Callable[[DoorSignal], None]


@dataclass(frozen=True)
class DoorLines:
    """One door's inputs: line offsets (None: the door has no such input) and their polarity.

    Active means open for the contact and pressed for the button; `*_active_low` is for wiring that reads
    low when active (a normally closed contact pulled up, say).
    """

    door: int
    contact: int | None = None
    rex: int | None = None
    contact_active_low: bool = False
    rex_active_low: bool = False


class DoorInputs(Protocol):
    """Reports door contacts and exit buttons to the loop."""

    def start(self, emit: Emit) -> None:
        """Start reporting; the contacts' current readings are reported first."""

    def stop(self) -> None:
        """Stop reporting and release the hardware."""


class SimulatedDoorInputs:
    """Contacts and buttons that only change when told to; every contact starts closed."""

    def __init__(self, doors: list[DoorLines]) -> None:
        self.doors = {d.door: d for d in doors}
        self._emit: Emit | None = None

    def start(self, emit: Emit) -> None:
        """Report to `emit` from now on (closed contacts: nothing to report first)."""
        self._emit = emit

    def stop(self) -> None:
        """Report nothing more."""
        self._emit = None

    def drive(
        self, door: int, action: Literal["open", "close", "exit"], reply: Future[dict[str, Any]] | None = None
    ) -> None:
        """Open or close a door's contact or press its exit button, as a person at the door would."""
        lines = self.doors.get(door)
        needs_contact = action in ("open", "close")
        if lines is None or (lines.contact if needs_contact else lines.rex) is None:
            what = "door contact" if needs_contact else "exit button"
            have = [d for d, ls in sorted(self.doors.items()) if (ls.contact if needs_contact else ls.rex) is not None]
            raise ValueError(f"door {door} has no {what} in this terminal's config (doors with one: {have or 'none'})")
        emit = self._emit
        if emit is None:
            raise ValueError("the door inputs are not running")
        signal = {"open": Signal.OPENED, "close": Signal.CLOSED, "exit": Signal.EXIT}[action]
        emit(DoorSignal(door, signal, reply))


class GpioDoorInputs:
    """Door contacts and exit buttons on input lines of one GPIO chip, reported on edges after debouncing."""

    def __init__(self, chip: str, doors: list[DoorLines], debounce_ms: int = 50) -> None:
        self._contacts = {d.contact: d.door for d in doors if d.contact is not None}
        self._buttons = {d.rex: d.door for d in doors if d.rex is not None}
        offsets = [*self._contacts, *self._buttons]
        if not offsets:
            raise ValueError("GPIO door inputs need at least one contact or exit button line")
        if len(set(offsets)) != len(offsets):
            raise ValueError(f"two door inputs share a GPIO line: {offsets}")
        gpiod = load_gpiod(INSTALL_HINT)  # the relay's loader, with this driver's hint
        self.chip = chip
        self._active = gpiod.line.Value.ACTIVE
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE
        debounce = timedelta(milliseconds=debounce_ms)
        config: dict[int, Any] = {}
        for d in doors:
            if d.contact is not None:
                config[d.contact] = gpiod.LineSettings(
                    direction=gpiod.line.Direction.INPUT,
                    edge_detection=gpiod.line.Edge.BOTH,
                    active_low=d.contact_active_low,
                    debounce_period=debounce,
                )
            if d.rex is not None:
                config[d.rex] = gpiod.LineSettings(
                    direction=gpiod.line.Direction.INPUT,
                    edge_detection=gpiod.line.Edge.RISING,
                    active_low=d.rex_active_low,
                    debounce_period=debounce,
                )
        self._request: Any = gpiod.request_lines(chip, consumer=CONSUMER, config=config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        log.info("GPIO door inputs on %s: contacts %s, exit buttons %s", chip, self._contacts, self._buttons)

    def start(self, emit: Emit) -> None:
        """Report each contact's current reading, then watch for edges on a thread of its own."""
        contacts = list(self._contacts)
        if contacts:
            for offset, value in zip(contacts, self._request.get_values(contacts), strict=True):
                signal = Signal.OPENED if value == self._active else Signal.CLOSED
                emit(DoorSignal(self._contacts[offset], signal, initial=True))
        self._thread = threading.Thread(target=self._watch, args=(emit,), name="door-inputs", daemon=True)
        self._thread.start()

    def _watch(self, emit: Emit) -> None:
        while not self._stop.is_set():
            try:
                if not self._request.wait_edge_events(timedelta(seconds=WAIT_S)):
                    continue
                events = self._request.read_edge_events()
            except Exception:
                log.exception("reading the door inputs on %s failed; doors are no longer supervised", self.chip)
                return
            for event in events:
                signal = self._signal(event.line_offset, event.event_type == self._rising)
                if signal is not None:
                    emit(signal)

    def _signal(self, offset: int, rising: bool) -> DoorSignal | None:
        if offset in self._contacts:
            return DoorSignal(self._contacts[offset], Signal.OPENED if rising else Signal.CLOSED)
        if offset in self._buttons and rising:
            return DoorSignal(self._buttons[offset], Signal.EXIT)
        return None

    def stop(self) -> None:
        """Stop watching and release the lines; stopping again does nothing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        request, self._request = self._request, None
        if request is not None:
            request.release()
