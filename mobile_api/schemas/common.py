"""Schemas every part of the API uses: the error shape, request strictness, paging."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models.text_guard import control_character


class RequestModel(BaseModel):
    """Base of request bodies and queries: unknown fields are an error, not silently dropped; no text field (of
    this model or any added later) holds a control character."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # Before any other check, so a NUL is named as such rather than as a pattern mismatch.
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and (character := control_character(text)) is not None:
                raise ValueError(f"holds a control character ({character}); remove it")
        return value


class ResponseModel(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(from_attributes=True)


class FieldProblem(ResponseModel):
    """One invalid field of a request."""

    field: str = Field(description="Where in the request, e.g. 'visitor_name' or 'door_ids.0'.")
    problem: str = Field(description="What is wrong with it.")


class ApiError(ResponseModel):
    """Every error this API returns."""

    error: str = Field(description="A stable code to branch on, e.g. 'token_expired', 'not_found', 'bad_window'.")
    message: str = Field(description="A sentence for the resident saying what went wrong and what to do.")
    fields: list[FieldProblem] | None = Field(None, description="The invalid fields, for request validation errors.")


class IdPath(RequestModel):
    """An object id in the path."""

    id: int = Field(ge=1, le=2**31 - 1, description="The object's id.")


class BeforeQuery(RequestModel):
    """Keyset paging: pass the previous page's `next_before` to get the next (older) page."""

    before: int | None = Field(None, ge=1, le=2**31 - 1, description="Return items older than this id.")
    limit: int = Field(50, ge=1, le=200, description="Items per page.")


class DoorRef(ResponseModel):
    """A door, by id and name."""

    id: int
    name: str


class EventOut(ResponseModel):
    """One decision at a door: when, where, how, and the outcome (never an image or a credential)."""

    id: int
    occurred_at: AwareDatetime
    door: DoorRef | None = Field(description="None if the door has since been removed.")
    method: EntryMethod = Field(description="How the person or visitor presented themselves.")
    decision: Decision
    reason: str = Field(description="Why, e.g. granted, used_up, expired, outside_schedule.")


class EventPage(ResponseModel):
    """A page of events, newest first."""

    items: list[EventOut]
    next_before: int | None = Field(description="Pass as `before` for the next page; None on the last page.")
