"""terminals.drivers.qr.Debouncer: a code held in front of the camera is submitted once per hold period."""

from __future__ import annotations

import pytest

from terminals.drivers.qr import Debouncer

APP_CODE = "GHA1:12345:04918273"
OTHER_CODE = "GHA1:777:55501234"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def debouncer(clock: FakeClock) -> Debouncer:
    return Debouncer(hold_s=3.0, clock=clock)


def test_same_text_in_consecutive_frames_is_accepted_once(debouncer: Debouncer, clock: FakeClock) -> None:
    accepted = []
    for _ in range(40):  # 2.6 s of frames at 15 fps
        accepted.append(debouncer.accept(APP_CODE))
        clock.advance(1 / 15)
    assert accepted.count(True) == 1
    assert accepted[0] is True


def test_same_text_is_accepted_again_once_the_hold_is_over(debouncer: Debouncer, clock: FakeClock) -> None:
    assert debouncer.accept(APP_CODE)
    clock.advance(2.99)
    assert not debouncer.accept(APP_CODE)
    clock.advance(0.02)
    assert debouncer.accept(APP_CODE)
    clock.advance(1.0)
    assert not debouncer.accept(APP_CODE)  # the hold starts again from the new submission


def test_hold_counts_from_the_submission_not_the_last_sighting(debouncer: Debouncer, clock: FakeClock) -> None:
    assert debouncer.accept(APP_CODE)
    for _ in range(5):
        clock.advance(0.5)
        assert not debouncer.accept(APP_CODE)
    clock.advance(0.5)
    assert debouncer.accept(APP_CODE)  # still shown after 3 s: submitted again, as a retry


def test_a_different_text_is_accepted_at_once_and_ends_the_hold(debouncer: Debouncer, clock: FakeClock) -> None:
    assert debouncer.accept(APP_CODE)
    clock.advance(0.1)
    assert debouncer.accept(OTHER_CODE)
    clock.advance(0.1)
    assert not debouncer.accept(OTHER_CODE)
    assert debouncer.accept(APP_CODE)  # a different text than the last one submitted


def test_zero_hold_accepts_every_sighting(clock: FakeClock) -> None:
    debouncer = Debouncer(hold_s=0.0, clock=clock)
    assert debouncer.accept(APP_CODE)
    assert debouncer.accept(APP_CODE)


def test_negative_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="hold_s"):
        Debouncer(hold_s=-1.0)


def test_only_a_digest_of_the_text_is_kept(debouncer: Debouncer) -> None:
    debouncer.accept(APP_CODE)
    assert all(APP_CODE not in repr(value) for value in vars(debouncer).values())
