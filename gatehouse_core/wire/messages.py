"""Message schemas, parsed at the edge into frozen models; anything that does not fit is rejected."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

WIRE_VERSION: Literal[1] = 1
MAX_MESSAGE_BYTES = 256 * 1024


class MessageError(ValueError):
    """A payload is not a valid message of the expected type."""


class WireModel(BaseModel):
    """Base for messages: unknown fields rejected, immutable."""

    # strict: JSON true is not an int, "5" is not a sequence number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Birth(WireModel):
    """What a terminal announces on every connect, so the server can send what it lacks."""

    v: Literal[1] = WIRE_VERSION
    type: Literal["birth"] = "birth"
    terminal: Annotated[str, Field(min_length=1, max_length=64)]
    applied_seq: Annotated[int, Field(ge=0)]
    roster_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    software: Annotated[str, Field(max_length=64)]
    face_models: tuple[Annotated[str, Field(max_length=64)], ...] = ()


M = TypeVar("M", bound="WireModel")


def encode(message: WireModel) -> bytes:
    """Serialise a message as compact JSON."""
    return message.model_dump_json().encode()


def decode(model: type[M], payload: bytes) -> M:
    """Parse and validate a payload as `model`; raise MessageError on any problem."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message of {len(payload)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        # pydantic's own JSON parser bounds nesting depth, so hostile payloads fail as ValidationError.
        return model.model_validate_json(payload)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise MessageError("payload is not JSON") from None
        raise MessageError(f"invalid {model.__name__}: {exc.error_count()} problem(s)") from None
