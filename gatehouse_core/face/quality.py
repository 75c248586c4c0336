"""Enrollment quality gates: one face, big enough, sharp, frontal, confidently detected; each with its reason.

The same measurements serve the door, where only faces in the near zone are considered at all.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from gatehouse_core.face.types import Detection, FaceModel, Image

DETECT_SIDE = 640
"""Enrollment photos are searched for faces at this size (longer side)."""


class QualityReason(enum.StrEnum):
    """Why a photo cannot become a template."""

    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    FACE_TOO_SMALL = "face_too_small"
    BLURRY = "blurry"
    NOT_FRONTAL = "not_frontal"
    LOW_SCORE = "low_score"


ADVICE: dict[QualityReason, str] = {
    QualityReason.UNREADABLE: "The photo could not be read. Choose a JPEG, PNG or WebP photo of the face.",
    QualityReason.TOO_LARGE: "The photo is too large. Use a smaller photo.",
    QualityReason.NO_FACE: "No face was found. Take a photo of the face from the front, in good light.",
    QualityReason.SEVERAL_FACES: "More than one face is in the photo. Take a photo with only this person in it.",
    QualityReason.FACE_TOO_SMALL: "The face is too small. Come closer or crop the photo around the face.",
    QualityReason.BLURRY: "The photo is blurry. Hold the camera still, focus on the face and retake it.",
    QualityReason.NOT_FRONTAL: "The face is turned away. Look straight into the camera and retake the photo.",
    QualityReason.LOW_SCORE: "The face is hard to see (shadow, cover or glare). Retake it in even light, uncovered.",
}


@dataclass(frozen=True)
class QualityLimits:
    """Thresholds of the enrollment gates (defaults chosen on faces-dev; see README)."""

    min_face_px: float = 64.0
    """Shorter side of the face box, in pixels of the photo."""
    min_sharpness: float = 25.0
    """Variance of the Laplacian of the aligned 112x112 grey crop."""
    max_yaw_deg: float = 35.0
    max_pitch_deg: float = 30.0
    max_roll_deg: float = 30.0
    min_score: float | None = None
    """Detector confidence; None takes the engine's own (`FaceModel.enroll_score`), as the scales differ."""
    min_contrast: float = 12.0
    """Standard deviation of the aligned grey crop: below it the face is too dark or washed out to judge."""
    similar_size: float = 0.7
    """A second face at least this share of the first one's size makes the photo ambiguous."""


@dataclass(frozen=True)
class Pose:
    """Head pose estimated from the five landmarks, in degrees (0, 0, 0 is facing the camera)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class QualityReport:
    """What was measured on the chosen face."""

    face_px: float
    score: float
    sharpness: float
    contrast: float
    pose: Pose


class QualityRejected(ValueError):
    """The photo fails a gate; `reason` says which and `str()` what to do about it."""

    def __init__(self, reason: QualityReason, report: QualityReport | None = None, message: str | None = None) -> None:
        super().__init__(message or ADVICE[reason])
        self.reason = reason
        self.report = report


# Nose tip protrusion in front of the eye plane, as a share of the distance between the eyes (adult average).
_NOSE_DEPTH = 0.55
# Where the nose tip sits between eye line and mouth line on a face looking straight ahead.
_NOSE_HEIGHT = 0.52


def estimate_pose(landmarks: npt.NDArray[np.floating]) -> Pose:
    """A coarse pose from five points: enough to refuse a face turned away, not a 3-D head model."""
    left_eye, right_eye, nose, left_mouth, right_mouth = np.asarray(landmarks, dtype=np.float64)
    dx, dy = right_eye - left_eye
    eye_gap = math.hypot(dx, dy)
    if eye_gap == 0:
        return Pose(90.0, 90.0, 0.0)
    roll = math.degrees(math.atan2(dy, dx))
    # Undo the roll around the eyes' midpoint, then compare the nose with the face's midline.
    cos, sin = dx / eye_gap, dy / eye_gap
    unroll = np.array([[cos, sin], [-sin, cos]])
    eyes_mid = (left_eye + right_eye) / 2
    nose_u = unroll @ (nose - eyes_mid)
    mouth_u = unroll @ ((left_mouth + right_mouth) / 2 - eyes_mid)
    depth = _NOSE_DEPTH * eye_gap
    midline_x = mouth_u[0] * (nose_u[1] / mouth_u[1]) if mouth_u[1] > 0 else 0.0
    yaw = math.degrees(math.atan2(nose_u[0] - midline_x, depth))
    if mouth_u[1] <= 0:
        return Pose(yaw, 90.0, roll)
    pitch = math.degrees(math.atan2((nose_u[1] / mouth_u[1] - _NOSE_HEIGHT) * mouth_u[1], depth))
    return Pose(yaw, pitch, roll)


def sharpness(crop: Image) -> float:
    """Variance of the Laplacian of an aligned crop: low when the face is out of focus or smeared.

    It also falls with contrast, so a dark photo is caught first by the contrast gate (with advice about light).
    """
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def measure(model: FaceModel, image: Image, face: Detection) -> QualityReport:
    """Size, score, sharpness, contrast and pose of one detected face."""
    crop = model.aligned(image, face)
    return QualityReport(
        face_px=face.size,
        score=face.score,
        sharpness=sharpness(crop),
        contrast=float(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).std()),
        pose=estimate_pose(face.landmarks),
    )


def check_enrollment(model: FaceModel, image: Image, limits: QualityLimits) -> tuple[Detection, QualityReport]:
    """The one face of an enrollment photo and its measurements, or QualityRejected with the first gate failed."""
    faces: list[Detection] = []
    # A face filling most of a small photo outgrows the detector's largest anchors once the photo is scaled up
    # to DETECT_SIDE (SCRFD misses faces above about half the frame); a second look at half the size finds it.
    for side in (DETECT_SIDE, DETECT_SIDE // 2):
        faces = model.detect(image, side)
        if faces:
            break
    if not faces:
        raise QualityRejected(QualityReason.NO_FACE)
    faces = sorted(faces, key=lambda f: f.size, reverse=True)
    face = faces[0]
    min_score = model.enroll_score if limits.min_score is None else limits.min_score
    # Only a confident second face counts: a bystander cut off by the edge or a false detection does not.
    others = [f for f in faces[1:] if f.score >= min_score]
    if others and others[0].size >= limits.similar_size * face.size:
        raise QualityRejected(QualityReason.SEVERAL_FACES)
    report = measure(model, image, face)
    if report.face_px < limits.min_face_px:
        raise QualityRejected(QualityReason.FACE_TOO_SMALL, report)
    if report.score < min_score or report.contrast < limits.min_contrast:
        raise QualityRejected(QualityReason.LOW_SCORE, report)
    pose = report.pose
    turned = (
        abs(pose.yaw) / limits.max_yaw_deg,
        abs(pose.pitch) / limits.max_pitch_deg,
        abs(pose.roll) / limits.max_roll_deg,
    )
    if max(turned) > 1:
        raise QualityRejected(QualityReason.NOT_FRONTAL, report)
    if report.sharpness < limits.min_sharpness:
        raise QualityRejected(QualityReason.BLURRY, report)
    return face, report
