"""Door relays: the one output a terminal drives. A door is unlocked while its relay line is active.

`GpioRelay` drives lines of a GPIO chip through libgpiod v2 (imported only when one is made, so this module
imports on machines without it); `SimulatedRelay` logs and records what a real one would do. Both leave
every door locked at start and when closed: a terminal that stops must not leave a door open.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

INSTALL_HINT = "the GPIO relay needs the gpiod package (libgpiod v2): pip install gpiod"

CONSUMER = "gatehouse"
"""The consumer name the kernel shows for our lines (gpioinfo)."""


class Relay(Protocol):
    """Locks and unlocks doors."""

    def set(self, door: int, unlocked: bool) -> None:
        """Unlock (True) or lock (False) a door."""

    def close(self) -> None:
        """Lock every door and release the hardware."""


class SimulatedRelay:
    """A relay that only logs, and keeps the last `max_history` changes as (monotonic time, door, unlocked)."""

    def __init__(self, max_history: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._history: deque[tuple[float, int, bool]] = deque(maxlen=max_history)
        self._unlocked: set[int] = set()

    @property
    def history(self) -> list[tuple[float, int, bool]]:
        """The recorded changes, oldest first."""
        with self._lock:
            return list(self._history)

    def set(self, door: int, unlocked: bool) -> None:
        """Record and log the change."""
        with self._lock:
            self._history.append((self._clock(), door, unlocked))
            if unlocked:
                self._unlocked.add(door)
            else:
                self._unlocked.discard(door)
        log.info("door %d %s", door, "unlocked" if unlocked else "locked")

    def close(self) -> None:
        """Lock the doors left unlocked, as a real relay does."""
        with self._lock:
            doors = sorted(self._unlocked)
        for door in doors:
            self.set(door, False)


def load_gpiod(hint: str = INSTALL_HINT) -> Any:
    """The libgpiod v2 Python bindings (untyped for us: looked up at run time); `hint` says what needs them."""
    try:
        gpiod = importlib.import_module("gpiod")
    except ImportError as exc:
        raise RuntimeError(hint) from exc
    if not hasattr(gpiod, "request_lines"):
        # The v1 bindings (e.g. Debian's python3-libgpiod before 2.x) share the name but not the API.
        raise RuntimeError(f"{hint} (the installed gpiod is the older v1 API)")
    return gpiod


class GpioRelay:
    """Door relays on lines of one GPIO chip: `lines` maps door id to line offset.

    `active_low` is for relay boards that energise on a low level; unlocked is always "active".
    """

    def __init__(self, chip: str, lines: dict[int, int], active_low: bool = False) -> None:
        if not lines:
            raise ValueError("a GPIO relay needs at least one door mapped to a line")
        offsets = list(lines.values())
        if len(set(offsets)) != len(offsets):
            raise ValueError(f"two doors share a GPIO line: {lines}")
        gpiod = load_gpiod()
        self.chip = chip
        self.lines = dict(lines)
        self._active = gpiod.line.Value.ACTIVE
        self._inactive = gpiod.line.Value.INACTIVE
        self._lock = threading.Lock()
        config = {
            offset: gpiod.LineSettings(
                direction=gpiod.line.Direction.OUTPUT, output_value=self._inactive, active_low=active_low
            )
            for offset in offsets
        }
        self._request: Any = gpiod.request_lines(chip, consumer=CONSUMER, config=config)
        log.info("GPIO relay on %s: door lines %s, all locked", chip, self.lines)

    def __repr__(self) -> str:
        return f"GpioRelay({self.chip!r}, {self.lines})"

    def set(self, door: int, unlocked: bool) -> None:
        """Drive the door's line active (unlocked) or inactive (locked)."""
        offset = self.lines.get(door)
        if offset is None:
            known = ", ".join(str(d) for d in sorted(self.lines))
            raise ValueError(f"door {door} has no relay line on {self.chip} (doors with one: {known})")
        with self._lock:
            if self._request is None:
                raise RuntimeError(f"{self!r} is closed")
            self._request.set_value(offset, self._active if unlocked else self._inactive)
        log.debug("door %d %s", door, "unlocked" if unlocked else "locked")

    def close(self) -> None:
        """Lock every door and release the lines; closing again does nothing."""
        with self._lock:
            request, self._request = self._request, None
            if request is None:
                return
            try:
                for offset in self.lines.values():
                    request.set_value(offset, self._inactive)
            finally:
                request.release()
