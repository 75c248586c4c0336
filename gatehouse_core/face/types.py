"""What every face engine hands out: detections with five landmarks, and normalised embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
"""A BGR image (height, width, 3), 8 bits per channel, as OpenCV uses."""

Vector = npt.NDArray[np.float32]
"""An L2-normalised face embedding."""


class FaceEngineError(RuntimeError):
    """The face engine cannot run (model files missing or unreadable); the message says what to fix."""


@dataclass(frozen=True)
class Detection:
    """One face in an image: its box (x1, y1, x2, y2) in pixels, the detector's score and five landmarks.

    Landmarks are (5, 2) pixel coordinates in this order: the eye on the image's left, the eye on the image's
    right, the nose tip, the mouth corner on the image's left, the mouth corner on the image's right.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: npt.NDArray[np.float32]

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The face's size: the shorter side of its box, in pixels."""
        return min(self.width, self.height)

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the box."""
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def scaled(self, factor: float) -> Detection:
        """The same detection in an image `factor` times as large."""
        x1, y1, x2, y2 = self.box
        return Detection(
            box=(x1 * factor, y1 * factor, x2 * factor, y2 * factor),
            score=self.score,
            landmarks=(self.landmarks * factor).astype(np.float32),
        )


class FaceModel(Protocol):
    """A detector and a recognizer that belong together; one instance per thread (sessions keep buffers)."""

    engine: str
    """'insightface' or 'opencv'."""

    model_id: str
    """Names the embedding space: templates of another model id can never be compared with this one's."""

    dim: int
    """Length of an embedding."""

    enroll_score: float
    """The least detector score an enrollment photo's face needs (detectors score on different scales)."""

    def detect(self, image: Image, max_side: int) -> list[Detection]:
        """Faces in `image`, best score first, looked for at most `max_side` pixels on the image's longer side."""

    def embed(self, image: Image, face: Detection) -> Vector:
        """The normalised embedding of `face`, aligned from the full-resolution `image`."""

    def aligned(self, image: Image, face: Detection) -> Image:
        """The 112x112 aligned crop the recognizer sees (for quality checks; never kept)."""


def unit_vector(values: npt.ArrayLike) -> Vector:
    """`values` scaled to length 1 as float32; ValueError if it has no usable direction (zero, NaN, inf)."""
    vector = np.asarray(values, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("not a usable face embedding (zero or non-finite)")
    return vector / norm
