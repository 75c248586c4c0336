"""terminals.drivers.qr: the camera reader thread, the in-memory feed and the OpenCV camera source."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import segno

from terminals.drivers import qr
from terminals.drivers.qr import CameraError, CameraQrReader, FrameFeed, OpenCvCamera
from terminals.inputs import Presentation, QrScanned

Image = npt.NDArray[np.uint8]

DOOR = 3
APP_CODE = "GHA1:12345:04918273"
OTHER_CODE = "GHA1:777:55501234"
TIMEOUT_S = 5.0


def qr_frame(text: str, *, bgr: bool = True) -> Image:
    """A 640x480 camera frame with the code straight in the middle."""
    modules = np.pad(np.array(segno.make_qr(text, error="m").matrix, dtype=np.uint8), 4)
    code = np.where(modules == 1, 0, 255).astype(np.uint8)
    code = np.asarray(cv2.resize(code, (232, 232), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    frame = np.full((480, 640), 128, dtype=np.uint8)
    frame[124:356, 204:436] = code
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), dtype=np.uint8) if bgr else frame


def blank_frame() -> Image:
    return np.full((480, 640, 3), 128, dtype=np.uint8)


def wait_until(condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> bool:
    """Poll `condition` until it holds or the timeout passes; True if it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


class Collected:
    """The terminal loop's side: what the driver submitted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Presentation] = []

    def __call__(self, presentation: Presentation) -> None:
        with self._lock:
            self._items.append(presentation)

    @property
    def items(self) -> list[Presentation]:
        with self._lock:
            return list(self._items)


class CountingFeed(FrameFeed):
    """A FrameFeed that counts the frames handed out, so a test knows when its frame was read."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0
        self.closed = 0

    def read(self) -> Image | None:
        frame = super().read()
        if frame is not None:
            self.delivered += 1
        return frame

    def close(self) -> None:
        self.closed += 1
        super().close()

    def show(self, frame: Image) -> None:
        """Push a frame and wait until the reader has taken it."""
        before = self.delivered
        self.push(frame)
        assert wait_until(lambda: self.delivered > before), "the reader did not take the frame"


class FlakySource:
    """A camera that raises (or returns None) while `broken` is set, then serves a feed."""

    def __init__(self, fail_with: type[Exception] | None = OSError) -> None:
        self.feed = CountingFeed()
        self.broken = threading.Event()
        self.broken.set()
        self.failures = 0
        self.fail_with = fail_with

    def read(self) -> Image | None:
        if self.broken.is_set():
            self.failures += 1
            if self.fail_with is not None:
                raise self.fail_with("camera unplugged")
            return None
        return self.feed.read()

    def close(self) -> None:
        self.feed.close()


@pytest.fixture
def submitted() -> Collected:
    return Collected()


@pytest.fixture
def feed() -> CountingFeed:
    return CountingFeed()


@pytest.fixture
def reader(feed: CountingFeed, submitted: Collected) -> Iterator[CameraQrReader]:
    driver = CameraQrReader(DOOR, feed, fps_limit=60.0, stall_s=None)
    driver.start(submitted)
    yield driver
    driver.stop()


# ---- the reader thread ------------------------------------------------------------------------------------------


def test_a_code_shown_is_submitted_once(reader: CameraQrReader, feed: CountingFeed, submitted: Collected) -> None:
    feed.push(qr_frame(APP_CODE))
    assert wait_until(lambda: len(submitted.items) >= 1)
    assert submitted.items == [QrScanned(door=DOOR, text=APP_CODE)]


def test_the_same_code_in_many_frames_is_submitted_once(
    reader: CameraQrReader, feed: CountingFeed, submitted: Collected
) -> None:
    frame = qr_frame(APP_CODE)
    for _ in range(6):
        feed.show(frame)
        feed.show(blank_frame())  # the code going out of view for a frame does not end the hold
    feed.show(qr_frame(APP_CODE, bgr=False))
    feed.show(blank_frame())  # frames are handled in order: once this one is taken, the code frames are done
    assert submitted.items == [QrScanned(door=DOOR, text=APP_CODE)]


def test_a_different_code_is_submitted_at_once(
    reader: CameraQrReader, feed: CountingFeed, submitted: Collected
) -> None:
    feed.show(qr_frame(APP_CODE))
    feed.show(qr_frame(OTHER_CODE))
    assert wait_until(lambda: len(submitted.items) >= 2)
    assert [item.text for item in submitted.items if isinstance(item, QrScanned)] == [APP_CODE, OTHER_CODE]


def test_a_source_that_raises_is_logged_once_and_retried(
    submitted: Collected, caplog: pytest.LogCaptureFixture
) -> None:
    source = FlakySource()
    driver = CameraQrReader(DOOR, source, fps_limit=60.0, stall_s=None, retry_s=0.005, max_retry_s=0.02)
    with caplog.at_level(logging.INFO, logger=qr.__name__):
        driver.start(submitted)
        try:
            assert wait_until(lambda: source.failures >= 10)
            assert driver._thread is not None and driver._thread.is_alive()
            source.broken.clear()
            source.feed.push(qr_frame(APP_CODE))
            assert wait_until(lambda: len(submitted.items) >= 1)
        finally:
            driver.stop()
    assert submitted.items == [QrScanned(door=DOOR, text=APP_CODE)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "OSError: camera unplugged" in warnings[0].getMessage()
    assert any("delivers frames again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_backoff_grows_while_the_source_keeps_failing(submitted: Collected) -> None:
    source = FlakySource()
    driver = CameraQrReader(DOOR, source, fps_limit=1000.0, stall_s=None, retry_s=0.01, max_retry_s=0.04)
    driver.start(submitted)
    time.sleep(0.5)
    driver.stop()
    # Without backoff a broken camera would be hit ~500 times here; with 10, 20, 40, 40 ms... about 14.
    assert 5 <= source.failures <= 30


def test_a_source_that_stays_silent_counts_as_failed(submitted: Collected, caplog: pytest.LogCaptureFixture) -> None:
    source = FlakySource(fail_with=None)
    driver = CameraQrReader(DOOR, source, fps_limit=60.0, stall_s=0.05, retry_s=0.005, max_retry_s=0.02)
    with caplog.at_level(logging.WARNING, logger=qr.__name__):
        driver.start(submitted)
        try:
            assert wait_until(lambda: any("no frame for" in r.getMessage() for r in caplog.records))
            source.broken.clear()
            source.feed.push(qr_frame(APP_CODE))
            assert wait_until(lambda: len(submitted.items) >= 1)
        finally:
            driver.stop()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_frames_the_decoder_refuses_do_not_end_the_thread(feed: CountingFeed, submitted: Collected) -> None:
    driver = CameraQrReader(DOOR, feed, fps_limit=60.0, stall_s=None, retry_s=0.01)
    driver.start(submitted)
    try:
        feed.show(np.zeros((480, 640), dtype=np.float32))
        feed.show(qr_frame(APP_CODE))
        assert wait_until(lambda: len(submitted.items) >= 1)
    finally:
        driver.stop()


def test_a_failing_submit_does_not_end_the_thread(feed: CountingFeed, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[Presentation] = []

    def submit(presentation: Presentation) -> None:
        calls.append(presentation)
        if len(calls) == 1:
            raise RuntimeError("queue full")

    driver = CameraQrReader(DOOR, feed, fps_limit=60.0, stall_s=None)
    with caplog.at_level(logging.ERROR, logger=qr.__name__):
        driver.start(submit)
        try:
            feed.show(qr_frame(APP_CODE))
            feed.show(qr_frame(OTHER_CODE))
            assert wait_until(lambda: len(calls) >= 2)
        finally:
            driver.stop()
    assert any("did not take a QR scan" in r.getMessage() for r in caplog.records)


def test_qr_texts_never_reach_the_log(feed: CountingFeed, caplog: pytest.LogCaptureFixture) -> None:
    submitted = Collected()
    driver = CameraQrReader(DOOR, feed, fps_limit=60.0, stall_s=None)
    with caplog.at_level(logging.DEBUG):
        driver.start(submitted)
        try:
            feed.show(qr_frame(APP_CODE))
            assert wait_until(lambda: len(submitted.items) >= 1)
        finally:
            driver.stop()
    assert any("19 characters" in r.getMessage() for r in caplog.records)
    assert not any("12345" in r.getMessage() or "04918273" in r.getMessage() for r in caplog.records)
    assert "04918273" not in repr(submitted.items)


def test_stop_ends_the_thread_and_closes_the_source(feed: CountingFeed, submitted: Collected) -> None:
    driver = CameraQrReader(DOOR, feed, fps_limit=60.0, stall_s=None)
    driver.start(submitted)
    thread = driver._thread
    assert thread is not None and thread.daemon
    with pytest.raises(RuntimeError, match="already started"):
        driver.start(submitted)
    driver.stop()
    assert not thread.is_alive()
    assert feed.closed == 1
    driver.stop()  # stopping again only closes the source again
    assert feed.closed == 2


class BlockingSource:
    """A camera whose read hangs until released (a wedged USB device)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reading = threading.Event()
        self.closed = threading.Event()

    def read(self) -> Image | None:
        self.reading.set()
        self.release.wait(TIMEOUT_S)
        return None

    def close(self) -> None:
        self.closed.set()


def test_stop_does_not_hang_on_a_wedged_camera(submitted: Collected, caplog: pytest.LogCaptureFixture) -> None:
    source = BlockingSource()
    driver = CameraQrReader(DOOR, source, stall_s=None, stop_timeout_s=0.05)
    driver.start(submitted)
    assert source.reading.wait(TIMEOUT_S)
    with caplog.at_level(logging.WARNING, logger=qr.__name__):
        driver.stop()
    assert any("still blocked in a read" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="already started"):
        driver.start(submitted)  # not a second thread on the same camera
    assert not source.closed.is_set()  # closing under a pending read is the thread's job, once it returns
    source.release.set()
    assert source.closed.wait(TIMEOUT_S)
    assert wait_until(lambda: driver._thread is not None and not driver._thread.is_alive())


def test_a_reader_can_be_started_again_after_stop(feed: CountingFeed, submitted: Collected) -> None:
    driver = CameraQrReader(DOOR, feed, fps_limit=60.0, stall_s=None)
    driver.start(submitted)
    driver.stop()
    driver.start(submitted)
    try:
        feed.push(qr_frame(APP_CODE))
        assert wait_until(lambda: len(submitted.items) >= 1)
    finally:
        driver.stop()


@pytest.mark.parametrize(
    "kwargs", [{"fps_limit": 0.0}, {"retry_s": 0.0}, {"retry_s": 2.0, "max_retry_s": 1.0}], ids=str
)
def test_bad_reader_settings_are_refused(feed: CountingFeed, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CameraQrReader(DOOR, feed, **kwargs)


# ---- FrameFeed ------------------------------------------------------------------------------------------------


def test_feed_hands_out_the_latest_frame_once() -> None:
    feed = FrameFeed()
    assert feed.read() is None
    first, second = blank_frame(), qr_frame(APP_CODE)
    feed.push(first)
    feed.push(second)
    assert feed.read() is second
    assert feed.read() is None
    feed.push(first)
    feed.close()
    assert feed.read() is None


def test_feed_push_is_thread_safe() -> None:
    feed = FrameFeed()
    frames = [np.full((4, 4), i, dtype=np.uint8) for i in range(200)]
    got: list[Image] = []

    def pusher(chunk: list[Image]) -> None:
        for frame in chunk:
            feed.push(frame)

    threads = [threading.Thread(target=pusher, args=(frames[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        frame = feed.read()
        if frame is not None:
            got.append(frame)
    for thread in threads:
        thread.join()
    last = feed.read()
    if last is not None:
        got.append(last)
    assert len({id(frame) for frame in got}) == len(got)  # no frame handed out twice
    assert all(any(frame is original for original in frames) for frame in got)


# ---- OpenCvCamera (with a fake cv2.VideoCapture: no camera here) -----------------------------------------------


class FakeCapture:
    """Stands in for cv2.VideoCapture: opens unless told not to, fails reads on demand."""

    instances: list[FakeCapture] = []
    open_ok = True
    read_ok = True

    def __init__(self, device: int | str) -> None:
        self.device = device
        self.released = False
        self.settings: dict[int, float] = {}
        FakeCapture.instances.append(self)

    def isOpened(self) -> bool:
        return FakeCapture.open_ok and not self.released

    def set(self, prop: int, value: float) -> bool:
        self.settings[prop] = value
        return True

    def read(self) -> tuple[bool, Image | None]:
        if FakeCapture.read_ok:
            return True, blank_frame()
        return False, None

    def release(self) -> None:
        self.released = True


@pytest.fixture
def fake_capture(monkeypatch: pytest.MonkeyPatch) -> type[FakeCapture]:
    FakeCapture.instances = []
    FakeCapture.open_ok = True
    FakeCapture.read_ok = True
    monkeypatch.setattr(qr.cv2, "VideoCapture", FakeCapture)
    return FakeCapture


def test_camera_opens_on_first_read_with_the_asked_size(fake_capture: type[FakeCapture]) -> None:
    camera = OpenCvCamera(0, width=1280, height=720)
    assert fake_capture.instances == []
    frame = camera.read()
    assert frame is not None and frame.shape == (480, 640, 3)
    (capture,) = fake_capture.instances
    assert capture.device == 0
    assert capture.settings[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert capture.settings[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert capture.settings[cv2.CAP_PROP_BUFFERSIZE] == 1
    camera.close()
    assert capture.released


def test_camera_is_reopened_after_a_failed_read(fake_capture: type[FakeCapture]) -> None:
    camera = OpenCvCamera("/dev/video2")
    assert camera.read() is not None
    fake_capture.read_ok = False
    assert camera.read() is None
    assert fake_capture.instances[0].released
    fake_capture.read_ok = True
    assert camera.read() is not None
    assert len(fake_capture.instances) == 2


def test_camera_that_cannot_be_opened_raises_without_credentials(fake_capture: type[FakeCapture]) -> None:
    fake_capture.open_ok = False
    camera = OpenCvCamera("rtsp://door:s3cret@10.0.0.7:554/stream1")
    with pytest.raises(CameraError, match="cannot open camera") as raised:
        camera.read()
    assert "s3cret" not in str(raised.value) and "s3cret" not in repr(camera)
    assert "10.0.0.7" in str(raised.value)
    assert fake_capture.instances[0].released


def test_reader_survives_an_unplugged_camera(
    fake_capture: type[FakeCapture], submitted: Collected, caplog: pytest.LogCaptureFixture
) -> None:
    fake_capture.open_ok = False
    driver = CameraQrReader(DOOR, OpenCvCamera(0), fps_limit=60.0, retry_s=0.005, max_retry_s=0.02)
    with caplog.at_level(logging.WARNING, logger=qr.__name__):
        driver.start(submitted)
        try:
            assert wait_until(lambda: len(fake_capture.instances) >= 5)
            fake_capture.open_ok = True
            assert wait_until(lambda: any(not c.released for c in fake_capture.instances))
        finally:
            driver.stop()
    assert all(capture.released for capture in fake_capture.instances)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
