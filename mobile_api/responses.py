"""Turning response models into JSON responses, so every body is exactly what the OpenAPI document says."""

from __future__ import annotations

from flask import Response, jsonify
from pydantic import BaseModel


def reply(model: BaseModel, status: int = 200) -> tuple[Response, int]:
    """Serialise a response model (JSON mode: times as ISO 8601 with their offset)."""
    return jsonify(model.model_dump(mode="json")), status


def no_content() -> tuple[str, int]:
    """204, for sign-out and other calls with nothing to say."""
    return "", 204
