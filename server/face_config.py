"""The [face] section of the server config: the engine enrollment runs and how strict its photo gates are."""

from __future__ import annotations

from pydantic import Field

from gatehouse_core.face.config import FaceEngineConfig
from gatehouse_core.face.enroll import PhotoLimits
from gatehouse_core.face.quality import QualityLimits


class FaceServerConfig(FaceEngineConfig):
    """The face engine (the same one the terminals run) plus the limits an enrollment photo must meet."""

    max_photo_bytes: int = Field(
        10_000_000,
        ge=10_000,
        le=16_000_000,
        description="Largest photo file accepted, in bytes (at most 16 MB, the console's request limit).",
    )
    max_photo_pixels: int = Field(
        40_000_000,
        ge=10_000,
        le=80_000_000,
        description="Most pixels a photo may declare; larger ones are refused before anything is decoded.",
    )
    min_face_px: float = Field(
        64, ge=32, le=4000, description="Least size of the face (shorter side of its box), in pixels of the photo."
    )
    min_sharpness: float = Field(
        25,
        ge=0,
        le=10_000,
        description="Least sharpness (variance of the Laplacian of the aligned 112x112 face); lower is blurry.",
    )
    max_yaw_deg: float = Field(35, gt=0, le=90, description="Most the head may be turned left or right, in degrees.")
    max_pitch_deg: float = Field(30, gt=0, le=90, description="Most the head may be tilted up or down, in degrees.")

    def quality_limits(self) -> QualityLimits:
        """The enrollment gates' thresholds."""
        return QualityLimits(
            min_face_px=self.min_face_px,
            min_sharpness=self.min_sharpness,
            max_yaw_deg=self.max_yaw_deg,
            max_pitch_deg=self.max_pitch_deg,
        )

    def photo_limits(self) -> PhotoLimits:
        """What a photo may be before it is decoded."""
        return PhotoLimits(max_bytes=self.max_photo_bytes, max_pixels=self.max_photo_pixels)
