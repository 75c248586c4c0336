"""Schemas of visitor passes: what a resident sends to invite a visitor, and what they get back."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from gatehouse_core.credential_hash import PASS_CODE_DIGITS
from gatehouse_core.pass_token import MAX_DOORS, MAX_USES
from mobile_api.schemas.common import BeforeQuery, DoorRef, RequestModel, ResponseModel
from server.models import PassStatus


class PassCreate(RequestModel):
    """A visitor invitation: who, when, through which doors, how many times."""

    visitor_name: str = Field(
        min_length=1, max_length=200, description="The visitor's name, for your own list (never on the share page)."
    )
    valid_from: AwareDatetime = Field(description="When the pass starts working, with its offset (ISO 8601).")
    valid_until: AwareDatetime = Field(
        description="When it stops working, with its offset; after valid_from, in the future, at most 31 days later."
    )
    door_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        min_length=1,
        max_length=MAX_DOORS,
        description=f"1 to {MAX_DOORS} different doors of your site that you may use yourself (see /me/doors).",
    )
    uses: int = Field(1, ge=1, le=MAX_USES, description=f"How many entries the pass allows (1 to {MAX_USES}).")

    @field_validator("door_ids")
    @classmethod
    def _different_doors(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("name each door once")
        return value


class PassListQuery(BeforeQuery):
    """Which of your passes to list, newest first."""

    status: PassStatus | None = Field(
        None, description="Only passes in this status (an active pass past its end counts as expired)."
    )


class PassOut(ResponseModel):
    """One of your visitor passes (the numeric code is shown only once, when the pass is made)."""

    id: int = Field(description="The pass's id.")
    visitor_name: str = Field(description="The visitor's name as you gave it.")
    valid_from: AwareDatetime = Field(description="When the pass starts working.")
    valid_until: AwareDatetime = Field(description="When it stops working.")
    doors: list[DoorRef] = Field(description="The doors it opens.")
    uses_allowed: int = Field(description="Entries the pass allows.")
    uses_count: int = Field(description="Entries made with it so far.")
    status: PassStatus = Field(
        description="active, used_up, revoked or expired (an active pass past its end shows as expired)."
    )
    qr_token: str = Field(description="The signed text of the pass's QR code (GHP1:...); it holds no secret.")
    share_url: str = Field(description="A page to send the visitor: the QR, the doors and the times, no sign-in.")


class PassCreated(ResponseModel):
    """A new pass, with its numeric code: shown this once, keep it or send it to the visitor now."""

    # "pass" is a Python keyword: the field is pass_ in code and "pass" on the wire (build it from a dict).
    model_config = ConfigDict(serialize_by_alias=True)

    pass_: PassOut = Field(alias="pass", description="The pass.")
    code: str = Field(
        pattern=rf"^[0-9]{{{PASS_CODE_DIGITS}}}$",
        description=f"The {PASS_CODE_DIGITS}-digit code the visitor can type at a keypad. Only its hash is kept: "
        "it cannot be shown again.",
    )
    qr_token: str = Field(description="The signed text of the pass's QR code (GHP1:...).")
    share_url: str = Field(description="A page to send the visitor: the QR, the doors and the times, no sign-in.")


class PassPage(ResponseModel):
    """A page of your passes, newest first."""

    items: list[PassOut] = Field(description="Passes, newest first.")
    next_before: int | None = Field(description="Pass as `before` for the next page; None on the last page.")
