"""The base of every wire object, and parsing at the edge: anything that does not fit is rejected."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

# Snapshot parts are cut well below this; anything bigger is refused before parsing.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024


class MessageError(ValueError):
    """A payload is not a valid message of the expected type."""


class WireModel(BaseModel):
    """Base for wire objects: unknown fields rejected, immutable, no type coercion, bytes as base64."""

    # strict: JSON true is not an int, "5" is not a sequence number.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, ser_json_bytes="base64", val_json_bytes="base64"
    )


M = TypeVar("M", bound=WireModel)


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
