"""Requests and answers of signing in and out, refreshing tokens, the password and the signed-in devices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from mobile_api.schemas.common import RequestModel, ResponseModel
from server.services.accounts.app_accounts import MAX_PASSWORD_LENGTH
from server.services.accounts.users import MIN_PASSWORD_LENGTH

# Passwords are taken exactly as typed: spaces at either end are part of them.
Password = Annotated[str, StringConstraints(strip_whitespace=False)]

LOGIN_FIELD = Field(
    min_length=1,
    max_length=64,
    description="Your username, or the phone number on file with the management office (any spacing or dashes).",
    examples=["liwei", "+86 138 0000 0001"],
)
DEVICE_FIELD = Field(
    "",
    max_length=120,
    description="A name for this device that you will recognise in your list of devices, e.g. 'Pixel 8'.",
)


class LoginRequest(RequestModel):
    """Sign in with a username or phone number and a password."""

    login: str = LOGIN_FIELD
    password: Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, description="Your app password.")
    device: str = DEVICE_FIELD


class CodeRequest(RequestModel):
    """Ask for a one-time sign-in code by text message to the phone on file."""

    login: str = LOGIN_FIELD


class CodeLoginRequest(RequestModel):
    """Sign in with the one-time code that was sent to your phone."""

    login: str = LOGIN_FIELD
    code: str = Field(pattern=r"^[0-9]{6}$", description="The 6-digit code from the text message.")
    device: str = DEVICE_FIELD


class RefreshRequest(RequestModel):
    """Swap a refresh token for a new pair of tokens."""

    refresh_token: str = Field(
        min_length=1, max_length=200, description="The refresh token of the last sign-in or refresh (works once)."
    )


class PasswordChange(RequestModel):
    """Set a first password, or change the current one."""

    current_password: Password | None = Field(
        None,
        max_length=MAX_PASSWORD_LENGTH,
        description="The password you have now; leave it out when setting your first password "
        "(after signing in with a code).",
    )
    new_password: Password = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"The new password, {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    )


class TokenPair(ResponseModel):
    """The tokens of a signed-in device. Keep the refresh token secret: it is shown only this once."""

    access_token: str = Field(description="Send as 'Authorization: Bearer <access_token>' on every other call.")
    token_type: Literal["Bearer"] = Field("Bearer", description="Always 'Bearer'.")
    expires_in: int = Field(ge=0, description="Seconds until the access token expires.")
    access_expires_at: AwareDatetime = Field(description="When the access token expires.")
    refresh_token: str = Field(description="Swap it at /auth/refresh for a new pair; each one works once.")
    refresh_expires_at: AwareDatetime = Field(description="When this device must sign in again if it is not used.")


class CodeRequested(ResponseModel):
    """The same answer whether or not the phone or username has an account."""

    message: str = Field(description="What happens next.")
    expires_in_seconds: int = Field(ge=1, description="How long a code stays valid once it arrives.")


class SessionsEnded(ResponseModel):
    """How many signed-in devices were signed out."""

    sessions_ended: int = Field(ge=0, description="Devices signed out by this call.")


class DeviceOut(ResponseModel):
    """One signed-in device."""

    id: int = Field(description="The device's sign-in id; DELETE /me/devices/{id} signs it out.")
    device: str = Field(description="The name the device gave when it signed in (may be empty).")
    created_at: AwareDatetime = Field(description="When the device signed in.")
    last_used_at: AwareDatetime = Field(description="When the device last signed in or refreshed its tokens.")
    current: bool = Field(description="True for the device making this request.")


class DeviceList(ResponseModel):
    """The devices signed in to your account, most recently used first."""

    items: list[DeviceOut] = Field(description="Signed-in devices.")
