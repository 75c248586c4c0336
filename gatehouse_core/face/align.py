"""Five-point alignment to the 112x112 crop ArcFace-style recognizers were trained on."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from gatehouse_core.face.types import Image

ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""Where the eyes, nose tip and mouth corners sit in the reference crop (the ArcFace convention)."""

CROP = 112


def similarity_transform(src: npt.NDArray[np.floating], dst: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """The least-squares similarity (rotation, uniform scale, translation) taking `src` onto `dst`, as 2x3.

    Umeyama's closed form (1991), the estimate the recognizers' training crops were made with; OpenCV's
    estimateAffinePartial2D only offers robust (RANSAC/LMedS) fits, which differ on five exact points.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    src_var = (src_c**2).sum() / len(src)
    scale = float((s * sign).sum() / src_var) if src_var > 0 else 1.0
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_crop(image: Image, landmarks: npt.NDArray[np.floating]) -> Image:
    """The 112x112 BGR crop with the five landmarks moved onto the reference positions."""
    matrix = similarity_transform(landmarks, ARCFACE_112)
    crop = cv2.warpAffine(image, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return np.asarray(crop, dtype=np.uint8)


def scaled_to(image: Image, max_side: int) -> tuple[Image, float]:
    """A copy with its longer side `max_side` pixels, and the factor applied (detectors look at this copy)."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return np.asarray(resized, dtype=np.uint8), scale
