"""The terminal's face entry: loads the engine and the template gallery in the background, then serves cameras.

Until both are loaded (seconds), and for good if the models cannot be loaded, face entry is simply not
available: cards, ID documents and codes work from the first moment, as at a door without a camera. The
same holds while the terminal loop holds face matching (after start and each reconnect, until sync confirms
the roster): the cameras make no attempt, so someone at the door is matched a moment later, not refused.

A photo presented through the control interface (the simulated terminal's camera) becomes a short run of camera
frames of that person standing at the door, fed to a watcher of its own through the same pipeline as a camera's
frames: detection, near zone, alignment, embedding, gallery search, decision and presentation attack detection.
"""

from __future__ import annotations

import enum
import logging
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gatehouse_core.face.calibration import ThresholdPolicy
from gatehouse_core.face.pad import AcceptAll, MultiFrameConsistency, PresentationAttackDetector
from gatehouse_core.face.photo import decode_photo
from gatehouse_core.face.types import FaceModel, Image
from terminals.config import TerminalFaceConfig
from terminals.drivers.face import DoorFaceSettings, FaceWatcher
from terminals.face_index import FaceIndex
from terminals.inputs import FaceAttempt

log = logging.getLogger(__name__)

GALLERY_CATCH_UP_S = 60.0  # longest wait, after a hold, for the gallery to take in what sync applied
PHOTO_FRAMES = 8  # frames made of a presented photo: enough for the PAD's agreement and for the fallback
PHOTO_MAX_BYTES = 10_000_000
PHOTO_MAX_PIXELS = 40_000_000
FRAME_SIZE = (640, 480)


class FaceState(enum.Enum):
    """Whether face entry is available."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class FaceService:
    """Face engine, gallery and one watcher per door camera."""

    def __init__(self, config: TerminalFaceConfig, doors: list[int], store_path: Path, seal_key: bytes) -> None:
        self.config = config
        self.doors = doors
        self.state = FaceState.LOADING
        self.problem = ""
        self.model: FaceModel | None = None
        self.index: FaceIndex | None = None
        self._policy: ThresholdPolicy | None = None
        self._settings = DoorFaceSettings()
        self._store_path = store_path
        self._seal_key = seal_key
        self._watchers: dict[int, FaceWatcher] = {}
        self._inference = threading.Lock()
        self._thread: threading.Thread | None = None
        # Held from the start; the loop releases it. A release waits for the gallery in a thread of its own,
        # and a hold that comes meanwhile (a new turn) cancels it.
        self._held = threading.Event()
        self._held.set()
        self._hold_lock = threading.Lock()
        self._hold_turn = 0

    def start(self) -> None:
        """Load in the background."""
        self._thread = threading.Thread(target=self._load, name="face-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the gallery worker."""
        if self._thread is not None:
            self._thread.join(30)
        if self.index is not None:
            self.index.stop()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until models and gallery are loaded (tests, benchmarks); False if loading failed or timed out."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.index is not None and self.index.wait_ready(timeout)

    def synced(self, people: frozenset[str], full: bool) -> None:
        """Pass the roster changes sync committed on to the gallery (from the terminal loop)."""
        index = self.index
        if index is not None:
            index.synced(people, full)

    @property
    def held(self) -> bool:
        """Whether the cameras wait (face matching held, or the gallery catching up after a release)."""
        return self._held.is_set()

    def hold(self) -> None:
        """Stop making face attempts until `release` (from the terminal loop)."""
        with self._hold_lock:
            self._hold_turn += 1
            self._held.set()

    def release(self) -> None:
        """Make face attempts again once the gallery has taken in every change sync applied so far (from the loop)."""
        with self._hold_lock:
            turn = self._hold_turn
        threading.Thread(target=self._release_when_current, args=(turn,), name="face-release", daemon=True).start()

    def _release_when_current(self, turn: int) -> None:
        index = self.index
        # Without an index yet, its first load reads the roster as it is now.
        if index is not None and not index.drain(GALLERY_CATCH_UP_S):
            log.warning("the face gallery is slow to take in sync changes; matching anyway (the roster is checked)")
        with self._hold_lock:
            if self._hold_turn == turn:
                self._held.clear()

    def look(self, door: int, frame: Image) -> FaceAttempt | None:
        """A camera thread's frame at `door`; the attempt to submit, if this frame completes one."""
        watcher = self._watchers.get(door)
        if watcher is None:
            return None
        return watcher.look(frame)

    def present_photo(self, door: int, photo: bytes) -> FaceAttempt | str:
        """A photo held up to `door`'s camera (simulation): the attempt its frames make, or why there is none."""
        model, index, policy = self.model, self.index, self._policy
        if self.state is not FaceState.READY or model is None or index is None or policy is None:
            return f"face entry is not available at this terminal yet ({self.state.value}); try again in a moment"
        if not index.ready or self.held:
            return "face matching waits for the terminal's roster to be confirmed; try again in a moment"
        frames = photo_frames(photo, PHOTO_FRAMES)  # PhotoError for what is not a usable photo
        # A watcher of its own: a presented photo is a new person at the door, whatever the real camera sees.
        watcher = FaceWatcher(
            door,
            model,
            index,
            policy,
            min_margin=self.config.min_margin,
            pad=self._pad(),
            settings=self._settings,
            lock=self._inference,
            held=self._held.is_set,
        )
        for frame in frames:
            attempt = watcher.look(frame)
            if attempt is not None:
                return attempt
        return "no face close to the camera in this photo (one person, facing the camera, filling much of it)"

    def looker(self, door: int) -> _DoorLooker:
        """What a camera at `door` calls with each frame."""
        return _DoorLooker(self, door)

    def status(self) -> dict[str, Any]:
        """For the control interface: state, model and template count, never a template."""
        report: dict[str, Any] = {"state": self.state.value}
        if self.problem:
            report["problem"] = self.problem
        if self.model is not None:
            report["model"] = self.model.model_id
        if self.index is not None:
            report["templates"] = len(self.index.gallery)
            report["loaded"] = self.index.ready
            if self.index.other_model:
                report["templates_of_other_models"] = self.index.other_model
        return report

    def _load(self) -> None:
        try:
            model = self.config.load()
            policy = self.config.policy(model.model_id)
        except Exception as exc:
            self.state = FaceState.FAILED
            self.problem = str(exc)
            log.error("face entry is unavailable at this terminal (%s); card, ID and code work as always", exc)
            return
        index = FaceIndex(self._store_path, self._seal_key, model.model_id, model.dim)
        self.model = model
        self.index = index
        self._policy = policy
        index.start()
        settings = self._settings = DoorFaceSettings(
            near_zone_px=self.config.near_zone_px,
            detect_side=self.config.detect_side,
            attempts=self.config.attempts,
            presence_gap_s=self.config.presence_gap_s,
        )
        for door in self.doors:
            self._watchers[door] = FaceWatcher(
                door,
                model,
                index,
                policy,
                min_margin=self.config.min_margin,
                pad=self._pad(),
                settings=settings,
                lock=self._inference,
                held=self._held.is_set,
            )
        self.state = FaceState.READY
        log.info("face engine %s loaded (model %s)", model.engine, model.model_id)

    def _pad(self) -> PresentationAttackDetector:
        if self.config.pad == "none":
            return AcceptAll()
        return MultiFrameConsistency(self.config.pad_frames)


def photo_frames(photo: bytes, count: int) -> list[Image]:
    """640x480 camera frames of the photo's person standing at the door, each moved by a pixel and with its own
    sensor noise, as a real camera's consecutive frames are (an identical frame is a replay to the PAD)."""
    image = decode_photo(photo, max_bytes=PHOTO_MAX_BYTES, max_pixels=PHOTO_MAX_PIXELS, work_side=1280)
    width, height = FRAME_SIZE
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = min(width, round(image.shape[1] * scale)), min(height, round(image.shape[0] * scale))
    scaled = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 90, dtype=np.uint8)
        x0 = min(max(0, (width - w) // 2 + i), width - w)
        y0 = min(max(0, (height - h) // 2 - i // 2), height - h)
        frame[y0 : y0 + h, x0 : x0 + w] = scaled
        noise = np.random.default_rng(i).integers(-3, 4, size=frame.shape, dtype=np.int16)
        frames.append(np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return frames


class _DoorLooker:
    """A camera's handle on the face service for its door."""

    def __init__(self, service: FaceService, door: int) -> None:
        self.service = service
        self.door = door

    def __call__(self, frame: Image) -> FaceAttempt | None:
        return self.service.look(self.door, frame)
