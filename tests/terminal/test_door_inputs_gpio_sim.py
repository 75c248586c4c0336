"""terminals.door_inputs against the kernel's GPIO simulator (gpio-sim) through the real libgpiod v2 bindings.

Runs only where the `gpiod` package (v2) is installed and gpio-sim can be configured (root, configfs mounted,
the gpio-sim module loaded); elsewhere it is skipped, and test_door_inputs.py covers the driver against a fake.
A simulated line's level is set by writing its pull ("pull-up" reads active, "pull-down" inactive).
"""

from __future__ import annotations

import importlib.util
import os
import queue
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminals.door_inputs import DoorLines, DoorSignal, GpioDoorInputs, Signal

CONFIGFS = Path("/sys/kernel/config/gpio-sim")


def _why_not() -> str | None:
    if importlib.util.find_spec("gpiod") is None:
        return "the gpiod package (libgpiod v2 bindings) is not installed"
    if not CONFIGFS.is_dir():
        return f"gpio-sim is not available ({CONFIGFS} missing: configfs not mounted or module not loaded)"
    if os.geteuid() != 0:
        return "configuring gpio-sim needs root"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


class SimChip:
    """One gpio-sim chip with eight lines, made through configfs and removed afterwards."""

    def __init__(self) -> None:
        self.dir = CONFIGFS / f"gatehouse-{secrets.token_hex(4)}"
        self.dir.mkdir()
        bank = self.dir / "bank0"
        bank.mkdir()
        (bank / "num_lines").write_text("8")
        (self.dir / "live").write_text("1")
        self.path = f"/dev/{(bank / 'chip_name').read_text().strip()}"
        self._lines = Path("/sys/devices/platform") / (self.dir / "dev_name").read_text().strip()
        self._lines = self._lines / (bank / "chip_name").read_text().strip()

    def set(self, offset: int, active: bool) -> None:
        (self._lines / f"sim_gpio{offset}" / "pull").write_text("pull-up" if active else "pull-down")

    def remove(self) -> None:
        (self.dir / "live").write_text("0")
        (self.dir / "bank0").rmdir()
        self.dir.rmdir()


@pytest.fixture
def chip() -> Iterator[SimChip]:
    made = SimChip()
    try:
        yield made
    finally:
        made.remove()


def test_contacts_and_exit_buttons_on_simulated_lines(chip: SimChip) -> None:
    chip.set(1, True)  # door 1 open before the terminal starts
    inputs = GpioDoorInputs(chip.path, [DoorLines(1, contact=1, rex=2)], debounce_ms=0)
    heard: queue.Queue[DoorSignal] = queue.Queue()
    inputs.start(heard.put)
    try:
        assert heard.get(timeout=10) == DoorSignal(1, Signal.OPENED, initial=True)
        chip.set(1, False)
        assert heard.get(timeout=10) == DoorSignal(1, Signal.CLOSED)
        chip.set(2, True)
        assert heard.get(timeout=10) == DoorSignal(1, Signal.EXIT)
        chip.set(2, False)  # the button's release is no second request
        chip.set(1, True)
        assert heard.get(timeout=10) == DoorSignal(1, Signal.OPENED)
    finally:
        inputs.stop()
