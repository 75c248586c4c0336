"""Face consent and selfie enrollment: what the app sends and what it gets back (never a photo or a template)."""

from __future__ import annotations

from flask_openapi3 import FileStorage
from pydantic import AwareDatetime, Field

from mobile_api.schemas.common import RequestModel, ResponseModel
from mobile_api.schemas.records import ReceiptOut
from server.models import ConsentChannel, ConsentGiver
from server.services.face.consent import FaceState

SHA256_HEX = r"^[0-9a-f]{64}$"


class NoticeRef(ResponseModel):
    """The site's current privacy notice, by version and the hash of its exact text."""

    version: int = Field(description="Version number of the notice; echo it back when consenting.")
    sha256: str = Field(description="SHA-256 (hex) of the notice text; echo it back when consenting.")


class NoticeSectionOut(ResponseModel):
    """One section of the notice in one language."""

    key: str = Field(
        description="Which section: controller, collected, purpose, retention, storage, access, withdrawal, "
        "alternatives, rights or contact (the same key in every language)."
    )
    heading: str = Field(description="The section's heading, in this reading's language.")
    text: str = Field(description="The section's text, in this reading's language (line breaks are meaningful).")


class NoticeReadingOut(ResponseModel):
    """The notice in one language, read from the exact text: show the one in the resident's language."""

    lang: str = Field(description="The language: en or zh.")
    title: str = Field(description="The notice's title in this language.")
    sections: list[NoticeSectionOut] = Field(description="The sections, in order.")
    closing: str = Field(description="The closing statement: face entry is optional, other ways open the same doors.")


class NoticeOut(NoticeRef):
    """The full text of the site's current privacy notice, to show before asking for consent."""

    text: str = Field(description="The exact notice text (every language), whose SHA-256 consent records.")
    published_at: AwareDatetime = Field(description="When this version was published.")
    readings: list[NoticeReadingOut] = Field(
        description="The same notice by language (en, zh), each part of `text`, with headings in that language; "
        "empty for a notice published in English only (show `text`)."
    )


class ConsentOut(ResponseModel):
    """The resident's active face consent."""

    id: int = Field(description="The consent record's id.")
    given_at: AwareDatetime = Field(description="When the consent was given.")
    given_by: ConsentGiver = Field(description="self, or guardian for a minor (given at the management office).")
    channel: ConsentChannel = Field(description="Where it was given: app, desk or console.")
    notice_version: int | None = Field(description="The privacy notice version it was given under.")
    expires_at: AwareDatetime | None = Field(description="When it lapses; None if it lasts until withdrawn.")


class TemplateOut(ResponseModel):
    """That a face template exists (never its contents)."""

    id: int = Field(description="The template's id (erasure receipts name it).")
    model_id: str = Field(description="The face model the template was made with.")
    created_at: AwareDatetime = Field(description="When it was stored.")


class FaceStatus(ResponseModel):
    """Where the resident stands with face entry, which is always optional."""

    state: FaceState = Field(
        description="off (face entry switched off at the site), not_asked, declined, minor_not_offered, "
        "stale (consent given under an old notice or model: consent again to use face), consented (no template "
        "yet) or enrolled."
    )
    offer: bool = Field(description="Whether the app may offer face entry unprompted (never after a decline).")
    site_face_enabled: bool = Field(description="Whether the site uses face entry at all.")
    app_enrollment_allowed: bool = Field(
        description="Whether the site takes the enrollment selfie from the app (otherwise at the management office)."
    )
    consent: ConsentOut | None = Field(description="The active consent, if any.")
    notice: NoticeRef | None = Field(description="The site's current privacy notice, if it has published one.")
    templates: list[TemplateOut] = Field(description="The resident's stored face templates (ids only).")
    erasures_pending: int = Field(
        ge=0, description="Erasures of this resident's face data not yet confirmed by every terminal."
    )


class ConsentGive(RequestModel):
    """Consent to face entry under the notice the resident was shown."""

    notice_version: int = Field(
        ge=1, le=2**31 - 1, description="The version of the notice shown (from /me/face/notice)."
    )
    notice_sha256: str = Field(
        min_length=64, max_length=64, pattern=SHA256_HEX, description="The sha256 of the notice shown, lower-case hex."
    )


class Withdrawn(ResponseModel):
    """Consent withdrawn; every face template erased on the server and queued for erasure on every terminal."""

    withdrawn_at: AwareDatetime = Field(description="When the consent was withdrawn.")
    receipts: list[ReceiptOut] = Field(description="One receipt per erased template (empty if there was none).")
    state: FaceState = Field(description="The face state now (declined: the app does not offer face again).")


class PhotoForm(RequestModel):
    """A selfie for enrollment, as multipart/form-data; it is used for this request only and never kept."""

    photo: FileStorage = Field(description="A JPEG, PNG or WebP photo of the resident's face, alone, from the front.")


class QualityOut(ResponseModel):
    """What the enrollment gates measured on the photo."""

    face_px: float = Field(description="Size of the face (shorter side of its box), in pixels.")
    score: float = Field(description="The detector's confidence.")
    sharpness: float = Field(description="Sharpness of the aligned face (higher is sharper).")
    contrast: float = Field(description="Contrast of the aligned face.")
    yaw_deg: float = Field(description="Head turned left or right, in degrees.")
    pitch_deg: float = Field(description="Head tilted up or down, in degrees.")
    roll_deg: float = Field(description="Head tilted sideways, in degrees.")


class PhotoEnrolled(ResponseModel):
    """A face template was made from the photo and stored (sealed); the photo itself was dropped."""

    template_id: int = Field(description="The new template's id.")
    model_id: str = Field(description="The face model it was made with.")
    quality: QualityOut = Field(description="What the gates measured.")
