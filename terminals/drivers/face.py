"""Face at the door: frames in, at most one `FaceAttempt` per presentation out.

Presence gating: faces are looked for on a reduced copy of the frame, and only a face at least
`near_zone_px` tall (someone standing at the door) starts a presentation; people passing in the background
are never embedded or matched. A presentation is one person in the near zone until nobody has been there for
`presence_gap_s`. Within it, each frame's face is embedded and searched; the presentation attack detector
must accept consecutive matches before one matched attempt is submitted. After `attempts` frames without
an accepted match, one unmatched attempt is submitted (the display then asks for card, ID or code) and the
face is left alone until it leaves: repeated failures never hold up or lock out the other methods. While
face matching is held (the roster may still lack deletions after a reconnect) nothing is looked for, and
the presentation starts afresh once it is released.

Frames and crops are local variables of one call: never stored, sent or logged.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gatehouse_core.face.calibration import ThresholdPolicy
from gatehouse_core.face.gallery import MatchOutcome, decide
from gatehouse_core.face.pad import Observation, PresentationAttackDetector
from gatehouse_core.face.quality import estimate_pose
from gatehouse_core.face.types import Detection, FaceModel, Image
from terminals.face_index import FaceIndex
from terminals.inputs import FaceAttempt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoorFaceSettings:
    """How a door's camera looks for faces."""

    near_zone_px: float = 90.0
    """Least face size (shorter box side, frame pixels) of someone at the door."""
    detect_side: int = 320
    """Longer side of the reduced frame the detector sees."""
    attempts: int = 3
    """Frames without an accepted match before the presentation falls back to card, ID and code."""
    presence_gap_s: float = 1.0
    """A presentation ends when no face has been in the near zone for this long."""
    max_turn_deg: float = 40.0
    """Frames with the head turned further are skipped (neither match nor failure)."""


class Phase(enum.Enum):
    """Where the current presentation is."""

    IDLE = "idle"
    LOOKING = "looking"
    DONE = "done"


class FaceWatcher:
    """One door camera's face logic; `look` is called from that camera's thread with each frame."""

    def __init__(
        self,
        door: int,
        model: FaceModel,
        index: FaceIndex,
        policy: ThresholdPolicy,
        *,
        min_margin: float,
        pad: PresentationAttackDetector,
        settings: DoorFaceSettings | None = None,
        lock: threading.Lock | None = None,
        clock: Callable[[], float] = time.monotonic,
        held: Callable[[], bool] | None = None,
    ) -> None:
        self.door = door
        self.model = model
        self.index = index
        self.policy = policy
        self.min_margin = min_margin
        self.pad = pad
        self.settings = settings or DoorFaceSettings()
        self._lock = lock or threading.Lock()
        self._clock = clock
        self._held = held or _never
        self.phase = Phase.IDLE
        self._observations: list[Observation] = []
        self._failures = 0
        self._turned = 0
        self._last_seen = 0.0

    def look(self, frame: Image) -> FaceAttempt | None:
        """Examine one frame; the attempt to submit when this frame completes a presentation."""
        if not self.index.ready:
            return None  # still loading templates: face waits, the other methods do not
        if self._held():
            # Matches made now could be against templates withdrawn meanwhile; what was seen so far is dropped.
            self._reset()
            return None
        now = self._clock()
        face = self._near_face(frame)
        if face is None:
            if self.phase is not Phase.IDLE and now - self._last_seen >= self.settings.presence_gap_s:
                self._reset()
            return None
        self._last_seen = now
        if self.phase is Phase.DONE:
            return None
        self.phase = Phase.LOOKING
        pose = estimate_pose(face.landmarks)
        if max(abs(pose.yaw), abs(pose.pitch)) > self.settings.max_turn_deg:
            # Not a failure yet (people turn towards the door), but someone who never faces the camera still
            # gets the fallback prompt, after twice as many frames.
            self._turned += 1
            if self._turned < 2 * self.settings.attempts:
                return None
            self.phase = Phase.DONE
            return FaceAttempt(door=self.door, person=None)
        return self._match(frame, face, now)

    def _near_face(self, frame: Image) -> Detection | None:
        with self._lock:
            faces = self.model.detect(frame, self.settings.detect_side)
        near = [f for f in faces if f.size >= self.settings.near_zone_px]
        return max(near, key=lambda f: f.size) if near else None

    def _match(self, frame: Image, face: Detection, now: float) -> FaceAttempt | None:
        with self._lock:
            vector = self.model.embed(frame, face)
        gallery = self.index.gallery
        candidates = gallery.search(vector)
        decision = decide(candidates, self.policy.threshold(len(gallery)), self.min_margin)
        label = decision.label if decision.outcome is MatchOutcome.MATCH else None
        self._observations.append(Observation(label=label, box=face.box, landmarks=face.landmarks, at=now))
        del self._observations[:-8]
        if label is not None:
            verdict = self.pad.assess(self._observations)
            if verdict.live is True:
                self.phase = Phase.DONE
                return FaceAttempt(door=self.door, person=label, score=decision.score, template=decision.key)
            if verdict.live is None:
                return None  # a match still waiting for the next frames' agreement
            log.warning("door %d: face presentation refused by %s (%s)", self.door, self.pad.name, verdict.reason)
        self._failures += 1
        if self._failures < self.settings.attempts:
            return None
        self.phase = Phase.DONE
        return FaceAttempt(
            door=self.door, person=None, score=decision.score, ambiguous=decision.outcome is MatchOutcome.AMBIGUOUS
        )

    def _reset(self) -> None:
        self.phase = Phase.IDLE
        self._observations.clear()
        self._failures = 0
        self._turned = 0


def _never() -> bool:
    return False
