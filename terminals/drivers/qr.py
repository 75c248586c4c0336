"""Camera QR driver: frames from a camera become one `QrScanned` per code shown at the door.

A `CameraQrReader` thread reads frames from a `FrameSource` (a camera through OpenCV, or the in-memory
`FrameFeed` of the simulated terminal and the tests), decodes them with OpenCV's QR detector and submits
each new text once (`Debouncer`). A camera that fails or goes silent is logged once per failure streak and
retried with backoff; the thread outlives any camera error.

Frames live only in local variables for the moment of decoding: never written to disk, sent or logged. QR
texts are credentials (app codes, signed pass tokens), so logs carry at most their length.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np
import numpy.typing as npt

from terminals.inputs import FaceAttempt, Presentation, QrScanned, Submit

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
"""A camera frame: BGR (height, width, 3) or grayscale (height, width), 8 bits per channel."""

FaceLooker = Callable[[Frame], FaceAttempt | None]
"""The face logic of a door (`FaceService.looker`): each frame in, an attempt out when one is complete."""

_CROP_MARGIN = 0.15
"""Share of the located code's size kept around it when decoding (room for the quiet zone and tilt)."""

_MIN_CROP_PX = 16


class CameraError(RuntimeError):
    """The camera could not be opened; the reader retries with backoff."""


# ---- decoding ---------------------------------------------------------------------------------------------------


class QrDecoder:
    """The text of the QR code in a frame, by OpenCV; keeps detector state, so use one per camera thread."""

    def __init__(self) -> None:
        self._detector = cv2.QRCodeDetector()
        # The second attempt, when the classic finder yields nothing decodable: OpenCV's ArUco-based finder
        # locates tilted and blurred codes the classic one misses, for a few ms on a frame without a code.
        # Decoding is the classic detector's either way.
        self._fallback_finder = cv2.QRCodeDetectorAruco()

    def decode(self, frame: Frame) -> str | None:
        """The decoded text, or None when no code is found or it is not UTF-8 text."""
        gray = _grayscale(frame)
        # Sensor noise makes thousands of tiny contours the finders then examine one by one (measured: p99
        # 99 ms on noisy 640x480 frames); a 3x3 blur for finding only removes them (p99 29 ms). Decoding
        # reads the unblurred crop. Fine codes the blur spoils get one more try on the sharp frame.
        smoothed = cv2.GaussianBlur(gray, (3, 3), 0)
        attempts = ((self._detector, smoothed), (self._fallback_finder, smoothed), (self._detector, gray))
        for finder, image in attempts:
            try:
                found, points = finder.detect(image)
            except cv2.error:
                # OpenCV's finders trip their own assertions on some frames without a code (e.g. opencv#27807,
                # opencv#21532): that is "nothing found", not a broken camera.
                continue
            if not found or points is None or np.size(points) != 8:
                continue
            text = self._decode_at(gray, np.asarray(points, dtype=np.float32).reshape(4, 2))
            if text is not None:
                return text
        return None

    def _decode_at(self, gray: Frame, corners: npt.NDArray[np.float32]) -> str | None:
        # Decoding a crop around the code rather than the whole frame halves the time OpenCV spends binarising.
        height, width = gray.shape
        low = corners.min(axis=0)
        high = corners.max(axis=0)
        margin = (high - low) * _CROP_MARGIN
        x0, y0 = np.maximum(np.floor(low - margin), 0).astype(int)
        x1 = int(min(np.ceil(high[0] + margin[0]), width))
        y1 = int(min(np.ceil(high[1] + margin[1]), height))
        if x1 - x0 < _MIN_CROP_PX or y1 - y0 < _MIN_CROP_PX:
            return None
        crop = gray[y0:y1, x0:x1]
        shifted = (corners - np.array([x0, y0], dtype=np.float32)).reshape(1, 4, 2)
        try:
            data, _straight = self._detector.decodeBytes(crop, shifted)
        except cv2.error:
            return None  # a degenerate quadrilateral; the next frame gets another chance
        if not data:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None  # not one of ours: Gatehouse codes are ASCII


def _grayscale(frame: Frame) -> Frame:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError("a camera frame must be a uint8 numpy array")
    if frame.ndim == 2:
        gray = frame
    elif frame.ndim == 3 and frame.shape[2] == 3:
        gray = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        gray = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY), dtype=np.uint8)
    elif frame.ndim == 3 and frame.shape[2] == 1:
        gray = frame[:, :, 0]
    else:
        raise ValueError(f"unsupported frame shape {frame.shape}: expected (h, w) or (h, w, 3)")
    return np.ascontiguousarray(gray)


class Debouncer:
    """Lets a text through once, then holds the same text back for `hold_s` seconds unless another came between.

    Frames without a code do not end the hold: a code that flickers in and out of focus is still one showing.
    Only a digest of the last text is kept, not the credential itself.
    """

    def __init__(self, hold_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        if hold_s < 0:
            raise ValueError("hold_s must not be negative")
        self.hold_s = hold_s
        self._clock = clock
        self._last: bytes | None = None
        self._last_at = 0.0

    def accept(self, text: str) -> bool:
        """True when this sighting of `text` is to be submitted."""
        now = self._clock()
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        if digest == self._last and now - self._last_at < self.hold_s:
            return False
        self._last = digest
        self._last_at = now
        return True


# ---- frame sources ----------------------------------------------------------------------------------------------


class FrameSource(Protocol):
    """Where a reader gets frames from."""

    def read(self) -> Frame | None:
        """The next frame, or None when there is none (no new frame, or the camera failed)."""

    def close(self) -> None:
        """Release the device; a later read may open it again."""


class OpenCvCamera:
    """A camera through `cv2.VideoCapture` (V4L2 index or path, or a stream URL), opened on first read."""

    def __init__(self, device: int | str, width: int = 640, height: int = 480) -> None:
        self.device = device
        self.width = width
        self.height = height
        self._capture: cv2.VideoCapture | None = None

    def __repr__(self) -> str:
        return f"OpenCvCamera({_describe(self.device)}, {self.width}x{self.height})"

    def read(self) -> Frame | None:
        """The next frame; None after a failed read (the device is released and reopened on the next read)."""
        if self._capture is None:
            self._capture = self._open()
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self.close()
            return None
        return np.asarray(frame, dtype=np.uint8)

    def close(self) -> None:
        """Release the device."""
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open camera {_describe(self.device)}")
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        # A one-frame queue: at our pace a deeper one would hand us frames from a second ago.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture


def _describe(device: int | str) -> str:
    """The device for messages, without any user or password a stream URL may carry."""
    if isinstance(device, int):
        return f"#{device}"
    if "://" in device:
        parts = urlsplit(device)
        return f"{parts.scheme}://{parts.hostname or ''}"
    return device


class FrameFeed:
    """An in-memory source: the latest pushed frame, handed out once (simulated terminal, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None

    def __repr__(self) -> str:
        return "FrameFeed()"

    def push(self, frame: Frame) -> None:
        """Offer a frame, replacing one not read yet (the feed keeps a reference: do not modify it after)."""
        with self._lock:
            self._frame = frame

    def read(self) -> Frame | None:
        """The frame pushed since the last read, or None."""
        with self._lock:
            frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        """Drop a frame not read yet."""
        with self._lock:
            self._frame = None


# ---- driver -----------------------------------------------------------------------------------------------------


class CameraQrReader:
    """A door's camera: a daemon thread reads frames, submits each new QR code once and, given `face`, faces.

    `stall_s`: how long a source may return no frame before it counts as failed (None: never, as for a
    `FrameFeed` that only has frames when someone pushes one). Retries back off from `retry_s` to `max_retry_s`.
    """

    def __init__(
        self,
        door: int,
        source: FrameSource,
        fps_limit: float = 15.0,
        *,
        hold_s: float = 3.0,
        stall_s: float | None = 2.0,
        retry_s: float = 0.5,
        max_retry_s: float = 10.0,
        stop_timeout_s: float = 5.0,
        face: FaceLooker | None = None,
        qr: bool = True,
    ) -> None:
        if fps_limit <= 0:
            raise ValueError("fps_limit must be positive")
        if retry_s <= 0 or max_retry_s < retry_s:
            raise ValueError("need 0 < retry_s <= max_retry_s")
        self.door = door
        self.source = source
        self.fps_limit = fps_limit
        self.hold_s = hold_s
        self.stall_s = stall_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.stop_timeout_s = stop_timeout_s
        self.face = face
        self.qr = qr
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"CameraQrReader(door={self.door}, source={self.source!r})"

    # ---- Driver -------------------------------------------------------------------------------------------------

    def start(self, submit: Submit) -> None:
        """Start the reader thread; from now on each new code seen is submitted (from that thread)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"{self!r} is already started")
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(submit, self._stop), name=f"qr-camera-door-{self.door}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; the thread releases the camera as it ends."""
        thread = self._thread
        if thread is None:
            self.source.close()
            return
        self._stop.set()
        thread.join(self.stop_timeout_s)
        if not thread.is_alive():
            self._thread = None
        else:  # kept, so that start() refuses a second thread on the same camera
            log.warning(
                "door %d: QR camera thread still blocked in a read after %.1f s; it ends when the read returns",
                self.door,
                self.stop_timeout_s,
            )

    # ---- the reader thread --------------------------------------------------------------------------------------

    def _run(self, submit: Submit, stop: threading.Event) -> None:
        decoder = QrDecoder()
        debouncer = Debouncer(self.hold_s)
        interval = 1.0 / self.fps_limit
        last_frame_at = time.monotonic()
        failing = False
        backoff = self.retry_s
        try:
            while not stop.is_set():
                started = time.monotonic()
                problem: str | None = None
                try:
                    got_frame, text, attempt = self._next_frame(decoder)
                except Exception as exc:
                    got_frame, text, attempt = False, None, None
                    problem = f"{type(exc).__name__}: {exc}"
                if problem is None and not got_frame and self.stall_s is not None:
                    silent_s = started - last_frame_at
                    if silent_s >= self.stall_s:
                        problem = f"no frame for {silent_s:.1f} s"
                if problem is not None:
                    if not failing:
                        log.warning("door %d: QR camera %r failed (%s); retrying", self.door, self.source, problem)
                        failing = True
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_retry_s)
                    continue
                if got_frame:
                    last_frame_at = started
                    if failing:
                        log.info("door %d: QR camera %r delivers frames again", self.door, self.source)
                        failing = False
                        backoff = self.retry_s
                if attempt is not None:
                    self._submit(submit, attempt)
                if text is not None and debouncer.accept(text):
                    log.debug("door %d: QR code read (%d characters)", self.door, len(text))
                    self._submit(submit, QrScanned(door=self.door, text=text))
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
        finally:
            try:
                self.source.close()
            except Exception:
                log.exception("door %d: could not close QR camera %r", self.door, self.source)

    def _next_frame(self, decoder: QrDecoder) -> tuple[bool, str | None, FaceAttempt | None]:
        """Read one frame and examine it: whether a frame came, its QR text, a face attempt it completes.

        The frame ends with this call.
        """
        frame = self.source.read()
        if frame is None:
            return False, None, None
        attempt = None
        if self.face is not None and frame.ndim == 3 and frame.shape[2] == 3:
            try:
                attempt = self.face(frame)
            except Exception:
                # A face engine failure must not take the QR reader (or the camera) down with it.
                log.exception("door %d: face engine failed on a frame", self.door)
        return True, decoder.decode(frame) if self.qr else None, attempt

    def _submit(self, submit: Submit, presentation: Presentation) -> None:
        try:
            submit(presentation)
        except Exception:
            what = "face attempt" if isinstance(presentation, FaceAttempt) else "QR scan"
            log.exception("door %d: the terminal loop did not take a %s", self.door, what)
