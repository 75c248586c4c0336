"""The PC/SC driver end to end: a real pcscd, vsmartcard's virtual reader, and virtual cards answering GET DATA.

Where a test shows that something did *not* happen, a driver that must see the same card is watching too and
was started later: pyscard tells its observers one after another in the order they were added, so once the
later driver has its event the earlier one has been told about the card as well. Waits poll with a timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from terminals.drivers.pcsc import PcscReader
from terminals.inputs import CardPresented, Presentation
from tests.support.pcsc import VIRTUAL_READER, PcscStack, VirtualCard

pytestmark = pytest.mark.integration

SEVEN_BYTE_UID = "04A2B3C4D5E6F7"
FOUR_BYTE_UID = "A1B2C3D4"


@dataclass
class Recorder:
    """A started driver and what it submitted."""

    driver: PcscReader
    events: list[Presentation] = field(default_factory=list)


StartReader = Callable[..., Recorder]


@pytest.fixture
def start_reader(pcsc: PcscStack) -> Iterator[StartReader]:
    """Start PcscReader drivers that record their submissions; all are stopped after the test."""
    started: list[PcscReader] = []

    def start(door: int = 1, reader: str | None = VIRTUAL_READER) -> Recorder:
        recorder = Recorder(PcscReader(door, reader))
        recorder.driver.start(recorder.events.append)
        started.append(recorder.driver)
        return recorder

    yield start
    for driver in started:
        driver.stop()


@pytest.fixture
def driver_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything the driver logs, from any thread, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="terminals.drivers.pcsc")
    return caplog


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll until `predicate` holds, or fail saying what was awaited.

    Like tests.integration.sync_rig.wait_for, kept here so this test does not import the whole terminal runtime.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def wait_events(recorder: Recorder, count: int) -> list[Presentation]:
    wait_for(lambda: len(recorder.events) >= count, what=f"{count} card event(s) from {recorder.driver!r}")
    return recorder.events


def test_seven_byte_uid_is_submitted_in_upper_case_hex(
    start_reader: StartReader, card: VirtualCard, driver_log: pytest.LogCaptureFixture
) -> None:
    door = start_reader(door=3)
    card.present(SEVEN_BYTE_UID.lower())
    assert wait_events(door, 1) == [CardPresented(door=3, uid=SEVEN_BYTE_UID)]
    assert SEVEN_BYTE_UID not in driver_log.text.upper()


def test_four_byte_uid_with_a_reader_name_substring(start_reader: StartReader, card: VirtualCard) -> None:
    door = start_reader(door=2, reader="PCD 00 00")
    card.present(FOUR_BYTE_UID)
    assert wait_events(door, 1) == [CardPresented(door=2, uid=FOUR_BYTE_UID)]


def test_without_a_reader_name_the_first_reader_is_read(
    pcsc: PcscStack, start_reader: StartReader, card: VirtualCard
) -> None:
    if pcsc.reader_names()[0] != VIRTUAL_READER:
        pytest.skip(f"a real reader is listed before {VIRTUAL_READER!r} on this machine")
    door = start_reader(door=4, reader=None)
    card.present(FOUR_BYTE_UID)
    assert wait_events(door, 1) == [CardPresented(door=4, uid=FOUR_BYTE_UID)]


def test_a_card_already_in_the_reader_at_start_is_read(start_reader: StartReader, card: VirtualCard) -> None:
    card.present(SEVEN_BYTE_UID)
    door = start_reader(door=6)
    assert wait_events(door, 1)[0] == CardPresented(door=6, uid=SEVEN_BYTE_UID)


def test_the_same_card_presented_again_is_a_second_event(start_reader: StartReader, card: VirtualCard) -> None:
    door = start_reader(door=1)
    card.present(SEVEN_BYTE_UID)
    wait_events(door, 1)
    card.remove()
    card.present(SEVEN_BYTE_UID)
    assert wait_events(door, 2) == [CardPresented(door=1, uid=SEVEN_BYTE_UID)] * 2


def test_a_card_refusing_get_data_is_logged_and_the_next_card_is_read(
    start_reader: StartReader, card: VirtualCard, driver_log: pytest.LogCaptureFixture
) -> None:
    door = start_reader(door=1)
    card.present("DEADBEEF", uid_support=False)
    wait_for(lambda: "6A 81" in driver_log.text, what="the driver's warning about SW 6A 81")
    warning = next(record for record in driver_log.records if "6A 81" in record.getMessage())
    assert warning.levelno == logging.WARNING
    assert door.events == []

    card.remove()
    card.present(FOUR_BYTE_UID)
    assert wait_events(door, 1) == [CardPresented(door=1, uid=FOUR_BYTE_UID)]
    assert "DEADBEEF" not in driver_log.text.upper()
    assert FOUR_BYTE_UID not in driver_log.text.upper()


def test_drivers_for_other_readers_submit_nothing(
    start_reader: StartReader, card: VirtualCard, driver_log: pytest.LogCaptureFixture
) -> None:
    nowhere = start_reader(door=8, reader="No Such Reader")
    assert "no PC/SC reader matches 'No Such Reader'" in driver_log.text
    other_reader = start_reader(door=9, reader="Virtual PCD 00 01")
    door = start_reader(door=1)  # added last, so told last
    card.present(SEVEN_BYTE_UID)
    wait_events(door, 1)
    assert nowhere.events == []
    assert other_reader.events == []


def test_a_stopped_driver_submits_nothing(start_reader: StartReader, card: VirtualCard) -> None:
    stopped = start_reader(door=5)
    stopped.driver.stop()
    door = start_reader(door=1)
    card.present(SEVEN_BYTE_UID)
    wait_events(door, 1)
    assert stopped.events == []
