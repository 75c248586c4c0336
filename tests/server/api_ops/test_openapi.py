"""The integration API's OpenAPI document: served without a key, valid OpenAPI 3.1, errors in one shape, and its
query limits are the validating models' own."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from schemathesis.core.result import Ok

from server.ops_api.schemas import EventsQuery
from server.services.integrations import api_keys

API = "/api/ops/v1"
DOCUMENT = f"{API}/openapi.json"
API_ERROR = {"$ref": "#/components/schemas/ApiError"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(DOCUMENT, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, spec) for path, item in document["paths"].items() for method, spec in item.items()]


def test_document_is_valid_openapi_31(app: Flask, document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, app)
    schema.validate()
    assert [str(r.err()) for r in schema.get_all_operations() if not isinstance(r, Ok)] == []
    assert {path for path, _m, _s in _operations(document)} == {
        f"{API}/events", f"{API}/alarms", f"{API}/doors", f"{API}/doors/{{door_id}}/open"
    }  # fmt: skip
    broken = copy.deepcopy(document)
    broken["paths"][f"{API}/events"]["get"]["responses"] = "none"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_operation_names_its_scope_and_documents_its_errors(document: dict[str, Any]) -> None:
    scopes = set()
    for path, method, spec in _operations(document):
        assert spec["summary"] and spec["description"], path
        [requirement] = spec["security"]
        scopes.update(requirement["apiKey"])
        assert {"400", "401", "403", "404", "500"} <= set(spec["responses"]), (method, path)
        for status, response in spec["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == API_ERROR
    assert scopes == set(api_keys.SCOPES)
    assert set(document["components"]["schemas"]["ApiError"]["required"]) == {"error", "message"}
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_query_limits_are_the_models(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"][f"{API}/events"]["get"]["parameters"]}
    assert set(parameters) == set(EventsQuery.model_fields)
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 500)
    assert document["components"]["schemas"]["OpenDoorBody"]["additionalProperties"] is False
