"""Presentation-attack detection (PAD): the interface, and a documented default that claims no certification.

The default, `MultiFrameConsistency`, accepts a face only after several consecutive frames agree: the same
person matched in each, landmarks that move a little between frames (a live face and a real sensor never give
two identical frames; a frozen or injected still frame does), and no jump in size or position between frames
(a swapped picture). It stops the crudest attacks only. A printed photo or a phone screen moved by hand in
front of the camera passes it. Sites that need more plug in a detector with real liveness evidence (infrared
or depth cameras, or a certified PAD model, assessed to ISO/IEC 30107-3) through the same interface.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Observation:
    """What one frame showed of the face at the door: the matched person (or None) and its geometry."""

    label: str | None
    box: tuple[float, float, float, float]
    landmarks: npt.NDArray[np.float32]
    at: float


@dataclass(frozen=True)
class PadVerdict:
    """Live, attack, or not decided yet (more frames needed)."""

    live: bool | None
    reason: str = ""


class PresentationAttackDetector(Protocol):
    """Judges a presentation from the consecutive observations of one face."""

    name: str

    def assess(self, observations: Sequence[Observation]) -> PadVerdict:
        """The verdict on the latest observations (oldest first)."""


class AcceptAll:
    """No PAD at all (benchmarks, or sites that deliberately rely on the guard)."""

    name = "none"

    def assess(self, observations: Sequence[Observation]) -> PadVerdict:
        """Always live."""
        return PadVerdict(True)


class MultiFrameConsistency:
    """Consecutive frames must agree on the person and show a live, continuous face."""

    name = "multi_frame_consistency"

    def __init__(
        self, frames: int = 2, *, min_motion_px: float = 0.2, max_jump: float = 0.35, max_scale_change: float = 0.25
    ) -> None:
        if frames < 1:
            raise ValueError("frames must be at least 1")
        self.frames = frames
        self.min_motion_px = min_motion_px
        self.max_jump = max_jump
        self.max_scale_change = max_scale_change

    def assess(self, observations: Sequence[Observation]) -> PadVerdict:
        """Live when the last `frames` observations agree; attack when they are frozen or jump."""
        recent = list(observations)[-self.frames :]
        if len(recent) < self.frames:
            return PadVerdict(None, "more frames needed")
        if recent[0].label is None or any(o.label != recent[0].label for o in recent):
            return PadVerdict(None, "frames disagree on the person")
        for before, after in itertools.pairwise(recent):
            motion = float(np.abs(after.landmarks - before.landmarks).max())
            if motion < self.min_motion_px:
                return PadVerdict(False, "frozen frame")
            size = max(_size(before.box), 1.0)
            jump = float(np.hypot(*(np.subtract(_centre(after.box), _centre(before.box))))) / size
            if jump > self.max_jump or abs(_size(after.box) / size - 1) > self.max_scale_change:
                return PadVerdict(False, "face jumped between frames")
        return PadVerdict(True)


def _size(box: tuple[float, float, float, float]) -> float:
    return min(box[2] - box[0], box[3] - box[1])


def _centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
