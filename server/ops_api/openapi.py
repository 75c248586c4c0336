"""The integration API's OpenAPI 3.1 document, built from the pydantic models that validate and shape each call."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server.ops_api import schemas
from server.services.integrations import api_keys

PREFIX = "/api/ops/v1"

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
DESCRIPTION = """The Gatehouse integration API, for property management, building automation and Home Assistant.

Every call needs `Authorization: Bearer <API key>`; a manager creates keys in the console (Administration →
Integrations) or with `gatehouse api-keys create`, each with scopes (`events:read`, `alarms:read`, `doors:read`,
`doors:command`) and optionally limited to one site. A missing, unknown or revoked key gets 401; a key without the
route's scope gets 403; another site's door is 404. Errors are always `{"error": code, "message": text}`.

Read the event feed with a cursor: keep the last `id` you saw and pass it as `after`; ids only grow, so nothing
is missed. For pushes instead of polling, register a webhook: deliveries carry the same items, signed as
Standard Webhooks specifies. Nothing biometric, and no card or ID number, is ever returned.
"""


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "The query or body is not valid.",
        401: "No API key, or an unknown or revoked one.",
        403: "The key lacks this operation's scope.",
        404: "Not found, or outside the key's site.",
        409: "The request conflicts with the current state.",
        422: "The request breaks a rule.",
        500: "A server error; nothing was saved.",
    }
    return {str(status): _json(schemas.ApiError, text[status]) for status in statuses}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = dict(field_schema)
        description = field_schema.pop("description", "")
        field_schema.pop("title", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": field_schema}
        if description:
            parameter["description"] = description
        if name == "topic":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _operation(
    summary: str,
    scope: str,
    answer: type[BaseModel],
    status: int = 200,
    query: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (400, 401, 403, 404, 500),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs the `{scope}` scope.",
        "security": [{"apiKey": [scope]}],
        "responses": {str(status): _json(answer, "OK"), **_errors(*errors)},
    }
    if query is not None:
        operation["parameters"] = _query_parameters(query)
    return operation


@cache
def document() -> dict[str, Any]:
    """The document (built once per process)."""
    models: list[type[BaseModel]] = [
        schemas.ApiError,
        schemas.EventPage,
        schemas.AlarmList,
        schemas.DoorList,
        schemas.DoorOpened,
        schemas.OpenDoorBody,
    ]
    _, defs = models_json_schema([(model, "serialization") for model in models], ref_template=REF)
    open_door = _operation(
        "Open a door once",
        api_keys.DOORS_COMMAND,
        schemas.DoorOpened,
        status=202,
        errors=(400, 401, 403, 404, 409, 422, 500),
    )
    open_door["description"] += " A terminal serving the door (an online one first) is told to open it once."
    open_door["parameters"] = [
        {
            "name": "door_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        }
    ]
    open_door["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": _ref(schemas.OpenDoorBody)}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gatehouse integration API", "version": VERSION, "description": DESCRIPTION},
        "paths": {
            PREFIX + "/events": {
                "get": _operation(
                    "The event feed after a cursor", api_keys.EVENTS_READ, schemas.EventPage, query=schemas.EventsQuery
                )
            },
            PREFIX + "/alarms": {
                "get": _operation("Alarms", api_keys.ALARMS_READ, schemas.AlarmList, query=schemas.AlarmsQuery)
            },
            PREFIX + "/doors": {
                "get": _operation(
                    "Doors and their live state", api_keys.DOORS_READ, schemas.DoorList, query=schemas.DoorsQuery
                )
            },
            PREFIX + "/doors/{door_id}/open": {"post": open_door},
        },
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (gh_ops_...) from the console or `gatehouse api-keys create`.",
                }
            },
        },
    }
