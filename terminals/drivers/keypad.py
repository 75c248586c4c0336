"""Keypads and ID-document readers that deliver one line per entry (serial/USB line devices, FIFOs).

Many door keypads and document readers present themselves as a serial or line device and send one
line per entry terminated by Enter. A line of digits is a keyed code (a resident's 8-digit app code or
a visitor's 6-digit code); a line starting with "ID " is an ID-document number. Lines are never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from terminals.inputs import CodeEntered, IdEntered, Presentation, Submit

log = logging.getLogger(__name__)

MAX_LINE = 64
ID_PREFIX = "ID "


def parse_line(door: int, line: str) -> Presentation | None:
    """One entry line → a presentation, or None for an empty or overlong line."""
    text = line.strip()
    if not text or len(text) > MAX_LINE:
        return None
    if text.upper().startswith(ID_PREFIX):
        return IdEntered(door, text[len(ID_PREFIX) :].strip())
    return CodeEntered(door, text)


class LineKeypad:
    """Reads entry lines from a device path in its own thread; reopens the device after failures."""

    def __init__(self, door: int, device: Path, retry_s: float = 1.0) -> None:
        self.door = door
        self.device = device
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, submit: Submit) -> None:
        """Start reading."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(submit,), name=f"keypad-{self.door}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading (a read in progress ends with the next line or the device closing)."""
        self._stop.set()

    def _run(self, submit: Submit) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                with open(self.device, encoding="utf-8", errors="replace") as stream:
                    failing = False
                    for line in stream:
                        if self._stop.is_set():
                            return
                        presentation = parse_line(self.door, line)
                        if presentation is not None:
                            submit(presentation)
            except OSError as exc:
                if not failing:
                    log.warning(
                        "keypad at door %d: cannot read %s (%s); retrying", self.door, self.device, exc.strerror
                    )
                failing = True
            time.sleep(self.retry_s)
