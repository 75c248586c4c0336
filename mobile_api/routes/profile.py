"""The resident's own profile, credentials, doors and app-code provisioning."""

from __future__ import annotations

import time

from flask import Response

from gatehouse_core import app_code
from mobile_api.auth import resident, resident_blueprint
from mobile_api.responses import reply
from mobile_api.schemas.profile import (
    AppCodeIssued,
    AppCodeQrFormat,
    CredentialList,
    CredentialOut,
    DoorList,
    DoorOut,
    FaceOut,
    Profile,
    SiteOut,
)
from mobile_api.state import mobile
from server.extensions import db
from server.services.accounts import app_accounts
from server.services.face import consent
from server.services.face import enrollment as face_enrollment
from server.services.people import credentials, resident_records

bp = resident_blueprint("profile", __name__, "Profile")

QR_FORMAT = f"{app_code.QR_PREFIX}:<credential_id>:<{app_code.DIGITS}-digit code>"


@bp.get(
    "/me",
    responses={200: Profile},
    summary="My profile",
    description="The signed-in resident's own record, site and face-entry state.",
)
def get_profile() -> tuple[Response, int]:
    who = resident()
    person, account = who.person, who.account
    site = person.site
    status = consent.face_status(db.session, person)
    return reply(
        Profile(
            name=person.full_name,
            kind=person.kind,
            unit=person.unit,
            phone=person.phone,
            status=person.status,
            username=account.username,
            has_password=account.password_hash is not None,
            site=SiteOut(code=site.code, name=site.name, timezone=site.timezone),
            face=FaceOut(state=status.state, app_enrollment_allowed=face_enrollment.app_enrollment_allowed(site)),
        )
    )


@bp.get(
    "/me/credentials",
    responses={200: CredentialList},
    summary="My credentials",
    description="Cards, ID documents and app codes registered to me, active and revoked, newest first. "
    "Card numbers, ID numbers and app-code seeds are never returned.",
)
def list_credentials() -> tuple[Response, int]:
    rows = resident_records.credentials_of(db.session, resident().person)
    return reply(
        CredentialList(
            items=[
                CredentialOut(id=r.id, kind=r.kind, status=r.status, created_at=r.created_at, revoked_at=r.revoked_at)
                for r in rows
            ]
        )
    )


@bp.post(
    "/me/app-code",
    responses={201: AppCodeIssued},
    summary="Get a new app code",
    description="Issues a fresh app-code seed for this phone and revokes any earlier app code. The seed is in "
    "this response only: store it on the device; it cannot be shown again. 422 `inactive` if the resident is "
    "no longer active at the site.",
)
def issue_app_code() -> tuple[Response, int]:
    person = resident().person
    credential, seed = credentials.issue_app_code_secret(
        db.session, app_accounts.resident_actor(person), mobile().keys, person
    )
    db.session.commit()
    generator = app_code.totp(seed)
    current = app_code.code_at_step(generator, app_code.step_of(time.time()))
    return reply(
        AppCodeIssued(
            credential_id=credential.id,
            secret_base32=generator.secret,
            otpauth_uri=app_code.provisioning_uri(seed, f"{person.site.code}:{person.pseudonym}"),
            digits=app_code.DIGITS,
            step_seconds=app_code.STEP_SECONDS,
            algorithm="SHA256",
            qr=AppCodeQrFormat(
                prefix=app_code.QR_PREFIX,
                format=QR_FORMAT,
                example=app_code.AppCodeQr(credential.id, current).text(),
            ),
        ),
        201,
    )


@bp.get(
    "/me/doors",
    responses={200: DoorList},
    summary="My doors",
    description="The doors my access groups let me use (whatever the time of day), sorted by name, with the "
    "entry methods each accepts. These are the doors I can put on a visitor pass.",
)
def list_doors() -> tuple[Response, int]:
    person = resident().person
    site = person.site
    doors = resident_records.usable_doors(db.session, person)
    return reply(
        DoorList(items=[DoorOut(id=d.id, name=d.name, methods=resident_records.door_methods(d, site)) for d in doors])
    )
