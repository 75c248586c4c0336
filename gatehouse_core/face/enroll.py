"""From photo bytes to a template: decode in memory, pass the quality gates, embed. The photo is then gone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gatehouse_core.face.photo import PhotoError, decode_photo
from gatehouse_core.face.quality import QualityLimits, QualityReason, QualityRejected, QualityReport, check_enrollment
from gatehouse_core.face.types import FaceModel, Vector, unit_vector

TEMPLATE_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class PhotoLimits:
    """What an uploaded photo may be before it is decoded."""

    max_bytes: int = 10_000_000
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class Enrollment:
    """A template made from a photo, with the model that made it and what the gates measured."""

    model_id: str
    vector: Vector
    report: QualityReport

    def template_bytes(self) -> bytes:
        """The embedding as stored (sealed) and sent to terminals: little-endian float32."""
        return vector_to_bytes(self.vector)


def template_from_photo(
    model: FaceModel, data: bytes, limits: QualityLimits | None = None, photo: PhotoLimits | None = None
) -> Enrollment:
    """The template of the one face in `data`, or QualityRejected saying what to change."""
    photo = photo or PhotoLimits()
    try:
        image = decode_photo(data, max_bytes=photo.max_bytes, max_pixels=photo.max_pixels)
    except PhotoError as exc:
        raise QualityRejected(QualityReason(exc.reason), message=str(exc)) from exc
    face, report = check_enrollment(model, image, limits or QualityLimits())
    vector = model.embed(image, face)
    del image  # the decoded photo ends here; only the template leaves
    return Enrollment(model_id=model.model_id, vector=vector, report=report)


def vector_to_bytes(vector: Vector) -> bytes:
    """Serialise an embedding."""
    return np.asarray(vector, dtype=TEMPLATE_DTYPE).tobytes()


def vector_from_bytes(data: bytes, dim: int) -> Vector:
    """Parse an embedding of `dim` values; ValueError if the length or values are wrong."""
    if len(data) != dim * TEMPLATE_DTYPE.itemsize:
        raise ValueError(f"a template of this model has {dim} values, not {len(data) // 4}")
    return unit_vector(np.frombuffer(data, dtype=TEMPLATE_DTYPE))
