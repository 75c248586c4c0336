"""Schemas of the resident's profile, credentials, doors and app-code provisioning."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from gatehouse_core.credential_hash import CredentialKind
from gatehouse_core.wire.messages import EntryMethod
from mobile_api.schemas.common import ResponseModel
from server.models import CredentialStatus, PersonKind, PersonStatus
from server.services.face.consent import FaceState


class SiteOut(ResponseModel):
    """The site the resident belongs to."""

    code: str = Field(description="The site's short code.")
    name: str = Field(description="The site's name.")
    timezone: str = Field(description="IANA time zone of the site, e.g. Asia/Shanghai; door schedules follow it.")


class FaceOut(ResponseModel):
    """Where the resident stands with face entry (always optional: every door also takes card, ID and code)."""

    state: FaceState = Field(
        description="off: switched off at the site; not_asked; declined; minor_not_offered; stale: consent needs "
        "renewing; consented: no template yet; enrolled."
    )
    app_enrollment_allowed: bool = Field(
        description="Whether the site lets residents enroll their face from the app (after consenting there)."
    )


class Profile(ResponseModel):
    """The signed-in resident's own record (no pseudonyms, hashes or other people's data)."""

    name: str = Field(description="The resident's full name as the site has it.")
    kind: PersonKind = Field(description="resident or staff.")
    unit: str | None = Field(description="Flat or unit, if recorded.")
    phone: str | None = Field(description="The phone number on file, if any.")
    status: PersonStatus = Field(description="active, moved_out or suspended.")
    username: str | None = Field(description="The app username, if one is set (else the resident signs in by phone).")
    has_password: bool = Field(description="Whether a password is set (if not, sign in with a one-time code).")
    site: SiteOut
    face: FaceOut


class CredentialOut(ResponseModel):
    """One credential, without its value: card numbers, ID numbers and app-code seeds are never returned."""

    id: int = Field(description="The credential's id.")
    kind: CredentialKind = Field(description="card, id_document or app_code.")
    status: CredentialStatus = Field(description="active or revoked.")
    created_at: AwareDatetime = Field(description="When it was registered.")
    revoked_at: AwareDatetime | None = Field(description="When it was revoked; None while active.")


class CredentialList(ResponseModel):
    """The resident's credentials, newest first."""

    items: list[CredentialOut] = Field(description="Active and revoked credentials, newest first.")


class AppCodeQrFormat(ResponseModel):
    """How the app renders the current code as a QR for door cameras."""

    prefix: str = Field(description="The QR text's fixed prefix, GHA1.")
    format: str = Field(description="The QR text's layout.")
    example: str = Field(description="The QR text for the code current when the seed was issued.")


class AppCodeIssued(ResponseModel):
    """A fresh app-code seed, shown this once: store it on the device; the server cannot show it again."""

    credential_id: int = Field(description="The new app-code credential; any earlier app code is now revoked.")
    secret_base32: str = Field(description="The TOTP seed (RFC 4648 base32, no padding). Never log it.")
    otpauth_uri: str = Field(description="otpauth:// URI carrying the seed, for authenticator apps.")
    digits: int = Field(description="Digits per code (8).")
    step_seconds: int = Field(description="Seconds per time step (30).")
    algorithm: Literal["SHA256"] = Field(description="HMAC algorithm of the codes (RFC 6238).")
    qr: AppCodeQrFormat


class DoorOut(ResponseModel):
    """A door the resident may use, and how one may identify there."""

    id: int = Field(description="The door's id (use it in a visitor pass's door_ids).")
    name: str = Field(description="The door's name.")
    methods: list[EntryMethod] = Field(
        description="Entry methods the door accepts: card, id_document, app_code, and face where switched on."
    )


class DoorList(ResponseModel):
    """The doors the resident may use, by name."""

    items: list[DoorOut] = Field(description="Doors the resident's access groups cover, sorted by name.")
