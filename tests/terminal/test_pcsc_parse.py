"""The PC/SC driver's pure parts: reading a UID out of a GET DATA response, and starting without pyscard."""

from __future__ import annotations

import sys

import pytest

from terminals.drivers import pcsc
from terminals.drivers.pcsc import PcscReader, PcscUnavailable, parse_uid_response


@pytest.mark.parametrize(
    ("data", "uid"),
    [
        ([0x04, 0xA2, 0xB3, 0xC4, 0xD5, 0xE6, 0xF7], "04A2B3C4D5E6F7"),
        ([0xA1, 0xB2, 0xC3, 0xD4], "A1B2C3D4"),
        ([0x00, 0x0A, 0xFF, 0x10], "000AFF10"),
        ([0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99], "08112233445566778899"),
    ],
)
def test_a_uid_with_90_00_is_upper_case_hex(data: list[int], uid: str) -> None:
    assert parse_uid_response(data, 0x90, 0x00) == uid


@pytest.mark.parametrize(
    ("sw1", "sw2"),
    [(0x6A, 0x81), (0x63, 0x00), (0x6D, 0x00), (0x6E, 0x00), (0x91, 0x00), (0x90, 0x01), (0x61, 0x04)],
)
def test_an_error_status_word_is_no_uid(sw1: int, sw2: int) -> None:
    assert parse_uid_response([0x01, 0x02, 0x03, 0x04], sw1, sw2) is None


def test_an_empty_answer_is_no_uid() -> None:
    assert parse_uid_response([], 0x90, 0x00) is None


@pytest.mark.parametrize("data", [[0x100, 0x01], [-1, 0x01]])
def test_values_that_are_not_bytes_are_no_uid(data: list[int]) -> None:
    assert parse_uid_response(data, 0x90, 0x00) is None


def test_starting_without_pyscard_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcsc, "_loaded", None)
    monkeypatch.setitem(sys.modules, "smartcard", None)  # makes `import smartcard...` raise ImportError
    monkeypatch.setitem(sys.modules, "smartcard.CardMonitoring", None)
    driver = PcscReader(door=1)
    with pytest.raises(PcscUnavailable, match=r"pip install 'gatehouse\[pcsc\]' and the pcscd service"):
        driver.start(lambda event: None)
    driver.stop()  # stopping a driver that never started is harmless
