"""Enrolling a face from a photo: the rules first, then the quality gates, then a sealed template. No photo is kept.

The photo lives in memory for one call: it is decoded, measured and embedded by the shared face engine
(gatehouse_core.face), and only the template and the figures the gates measured leave this module. Nothing
here writes, logs or audits the photo or the embedding.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO

from gatehouse_core.face.enroll import Enrollment, PhotoLimits, template_from_photo
from gatehouse_core.face.quality import QualityLimits, QualityReason, QualityRejected, QualityReport
from gatehouse_core.face.types import Detection, FaceEngineError, FaceModel, Image, Vector
from gatehouse_core.keyring import ServerKeys
from server.config import FaceServerConfig
from server.models import ConsentChannel, ConsentRecord, FaceTemplate, Person, Site, utcnow
from server.services.audit import Actor
from server.services.errors import DomainError, RuleViolation
from server.services.face.consent_rules import active_consent
from server.services.face.templates import require_enrollable, store_template
from server.services.session import DbSession

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "face enrollment needs a [face] section in the server config: set face.engine ('opencv' or 'insightface') "
    "and face.model_dir (the folder with the model files); see config/server.example.toml"
)


class FaceUnavailable(DomainError):
    """This server cannot enroll faces: no [face] section, or its model files cannot be loaded."""

    code = "face_unavailable"
    http_status = 503


class PhotoRejected(RuleViolation):
    """A photo failed a quality gate: `code` is photo_<reason>, the message says what to change."""

    def __init__(self, rejected: QualityRejected) -> None:
        super().__init__(str(rejected), code=f"photo_{rejected.reason.value}")
        self.reason: QualityReason = rejected.reason
        self.report: QualityReport | None = rejected.report


class PhotoTooLarge(PhotoRejected):
    """A photo over the configured size limit (code photo_too_large), refused on its length before any decoding."""

    def __init__(self, rejected: QualityRejected, max_bytes: int) -> None:
        super().__init__(rejected)
        self.max_bytes = max_bytes


class AppEnrollmentOff(DomainError):
    """The site takes enrollment photos at the management office only, not from the residents' app."""

    code = "app_enrollment_off"
    http_status = 403


def app_enrollment_allowed(site: Site) -> bool:
    """Whether residents of the site may send their enrollment selfie from the app (face on, manager allows it)."""
    return site.face_enabled and site.app_face_enrollment


def require_app_enrollment(site: Site) -> None:
    """Refuse a selfie from the app where the site does not allow it (before the photo is read)."""
    if not app_enrollment_allowed(site):
        raise AppEnrollmentOff(
            "This site does not take face photos from the app: ask the management office to enroll your face. "
            "Face entry is optional: your card, ID document and app code open the same doors."
        )


@dataclass(frozen=True)
class Enrolled:
    """A stored template and what the gates measured on the photo it came from."""

    template: FaceTemplate
    report: QualityReport


def quality_figures(report: QualityReport) -> dict[str, float]:
    """The gates' measurements as plain numbers (for the audit log and for operators)."""
    return {
        "face_px": round(float(report.face_px), 1),
        "score": round(float(report.score), 3),
        "sharpness": round(float(report.sharpness), 1),
        "contrast": round(float(report.contrast), 1),
        "yaw_deg": round(float(report.pose.yaw), 1),
        "pitch_deg": round(float(report.pose.pitch), 1),
        "roll_deg": round(float(report.pose.roll), 1),
    }


def _template(
    model: FaceModel, photo: bytes, limits: QualityLimits | None, photo_limits: PhotoLimits | None
) -> Enrollment:
    try:
        return template_from_photo(model, photo, limits, photo_limits)
    except QualityRejected as exc:
        max_bytes = (photo_limits or PhotoLimits()).max_bytes
        if exc.reason is QualityReason.TOO_LARGE and len(photo) > max_bytes:
            raise PhotoTooLarge(exc, max_bytes) from exc
        raise PhotoRejected(exc) from exc


def check_photo(
    model: FaceModel,
    photo: bytes,
    limits: QualityLimits | None = None,
    photo_limits: PhotoLimits | None = None,
) -> QualityReport:
    """The verdict enrollment would give `photo` (PhotoRejected with advice), without storing anything."""
    return _template(model, photo, limits, photo_limits).report


def enroll_photo(
    session: DbSession,
    actor: Actor,
    keys: ServerKeys,
    model: FaceModel,
    person: Person,
    consent: ConsentRecord | None,
    photo: bytes,
    limits: QualityLimits | None = None,
    photo_limits: PhotoLimits | None = None,
    *,
    at: datetime | None = None,
) -> Enrolled:
    """Make and store a person's face template from a photo (replacing their template of the same model).

    Refuses (RuleViolation) an inactive person, a site without face entry or a missing consent before the photo
    is decoded, and a photo that fails a gate with PhotoRejected (code photo_<reason>); nothing is stored then.
    Returns the template with what the gates measured.
    """
    at = at or utcnow()
    # Rules that need no photo come first: a refused enrollment never decodes the photo at all.
    consent = require_enrollable(person, consent, at, model.model_id)
    try:
        enrollment = _template(model, photo, limits, photo_limits)
    except PhotoRejected as exc:
        log.info("face photo for person %d refused: %s", person.id, exc.code)
        raise
    template = store_template(
        session,
        actor,
        keys,
        person,
        consent,
        model.model_id,
        enrollment.template_bytes(),
        at,
        quality=quality_figures(enrollment.report),
    )
    log.info("face template %d stored for person %d (model %s)", template.id, person.id, model.model_id)
    return Enrolled(template=template, report=enrollment.report)


# ---- the engine of one server process ------------------------------------------------------------------------


class GuardedModel:
    """A loaded face model whose inference calls run one at a time (engine sessions keep per-call state)."""

    def __init__(self, model: FaceModel) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.engine: str = model.engine
        self.model_id: str = model.model_id
        self.dim: int = model.dim
        self.enroll_score: float = model.enroll_score

    def detect(self, image: Image, max_side: int) -> list[Detection]:
        """Faces in `image`, best first."""
        with self._lock:
            return self._model.detect(image, max_side)

    def embed(self, image: Image, face: Detection) -> Vector:
        """The normalised embedding of `face`."""
        with self._lock:
            return self._model.embed(image, face)

    def aligned(self, image: Image, face: Detection) -> Image:
        """The aligned crop of `face`."""
        with self._lock:
            return self._model.aligned(image, face)


class EnrollmentEngine:
    """The face engine of a server process, built from its [face] section and loaded on first use only."""

    def __init__(self, config: FaceServerConfig | None) -> None:
        self.config = config
        self._load_lock = threading.Lock()
        self._model: GuardedModel | None = None

    @property
    def configured(self) -> bool:
        """Whether the server config has a [face] section."""
        return self.config is not None

    def _settings(self) -> FaceServerConfig:
        if self.config is None:
            raise FaceUnavailable(NOT_CONFIGURED)
        return self.config

    @property
    def limits(self) -> QualityLimits:
        """The configured quality gates."""
        return self._settings().quality_limits()

    @property
    def photo_limits(self) -> PhotoLimits:
        """The configured limits on photo files."""
        return self._settings().photo_limits()

    def model(self) -> FaceModel:
        """The model, loaded once per process (seconds, the first time); FaceUnavailable says what to fix."""
        if self._model is not None:
            return self._model
        settings = self._settings()
        with self._load_lock:
            if self._model is None:
                try:
                    loaded = settings.load()
                except FaceEngineError as exc:
                    reported = str(exc).rstrip(".")
                    raise FaceUnavailable(f"Face enrollment cannot start; the face engine says: {reported}.") from exc
                self._model = GuardedModel(loaded)
                log.info("face engine %s loaded (model %s)", loaded.engine, loaded.model_id)
            return self._model


# ---- enrollment from an uploaded file (console and phone app) --------------------------------------------------


def enroll_from_upload(
    session: DbSession,
    actor: Actor,
    keys: ServerKeys,
    engine: EnrollmentEngine,
    person: Person,
    upload: IO[bytes],
    *,
    channel: ConsentChannel,
    max_pixels: int | None = None,
    at: datetime | None = None,
) -> Enrolled:
    """Enroll a person's face from an uploaded photo file (the caller closes it), by the console or the phone app.

    `max_pixels` lowers the engine's pixel limit for this upload (the phone app's selfie cap); it never raises it.

    Refusals that need no photo come first, so a refused upload is never read: from the app, a site that takes no
    photos from the app (AppEnrollmentOff); a server without a face engine (FaceUnavailable); the person and consent
    rules. The file is then read to one byte past the size limit (PhotoTooLarge beyond it) and the gates decide
    (PhotoRejected).
    """
    at = at or utcnow()
    if channel is ConsentChannel.APP:
        require_app_enrollment(person.site)
    limits, photo_limits = engine.limits, engine.photo_limits
    if max_pixels is not None and max_pixels < photo_limits.max_pixels:
        photo_limits = replace(photo_limits, max_pixels=max_pixels)
    model = engine.model()
    consent = require_enrollable(person, active_consent(person, at), at, model.model_id)
    # One byte past the limit is enough for the gates to refuse the photo as too large.
    photo = upload.read(photo_limits.max_bytes + 1)
    return enroll_photo(session, actor, keys, model, person, consent, photo, limits, photo_limits, at=at)
