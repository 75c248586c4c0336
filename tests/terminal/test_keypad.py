"""terminals.drivers.keypad: entry lines from a real FIFO become presentations."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest

from terminals.drivers.keypad import LineKeypad, parse_line
from terminals.inputs import CodeEntered, IdEntered, Presentation


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("12345678\n", CodeEntered(3, "12345678")),
        (" 123456 \r\n", CodeEntered(3, "123456")),
        ("ID G1234 5678\n", IdEntered(3, "G1234 5678")),
        ("id g12345\n", IdEntered(3, "g12345")),
        ("\n", None),
        ("9" * 65 + "\n", None),
    ],
)
def test_parse_line(line: str, expected: Presentation | None) -> None:
    assert parse_line(3, line) == expected


def test_lines_written_to_a_fifo_arrive_in_order(tmp_path: Path) -> None:
    fifo = tmp_path / "keypad"
    os.mkfifo(fifo)
    got: queue.Queue[Presentation] = queue.Queue()
    keypad = LineKeypad(7, fifo, retry_s=0.05)
    keypad.start(got.put)
    with open(fifo, "w", encoding="utf-8") as device:
        device.write("12345678\nID G7654321\n\n654321\n")
    assert [got.get(timeout=5) for _ in range(3)] == [
        CodeEntered(7, "12345678"),
        IdEntered(7, "G7654321"),
        CodeEntered(7, "654321"),
    ]
    keypad.stop()


def test_a_missing_device_is_retried_until_it_appears(tmp_path: Path) -> None:
    fifo = tmp_path / "later"
    got: queue.Queue[Presentation] = queue.Queue()
    keypad = LineKeypad(1, fifo, retry_s=0.05)
    keypad.start(got.put)
    os.mkfifo(fifo)
    with open(fifo, "w", encoding="utf-8") as device:
        device.write("11223344\n")
    assert got.get(timeout=5) == CodeEntered(1, "11223344")
    keypad.stop()
