"""The OpenAPI document: served without a token, valid, generated from the models that validate requests.

Every check walks the document as served, so an operation added later is checked too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from pydantic import BaseModel
from schemathesis.core.result import Ok
from sqlalchemy import func, select

from mobile_api.app import OPENAPI_PATH
from mobile_api.schemas.common import BeforeQuery, RequestModel, ResponseModel
from mobile_api.schemas.passes import PassCreate
from server.extensions import db
from server.models import VisitorPass, utcnow
from tests.mobile.conftest import Household

API = "/api/v1"
BEARER = [{"bearer": []}]
API_ERROR = {"$ref": "#/components/schemas/ApiError"}
# Signing in needs no token; nor do /health and the document itself (neither is an operation of the document).
PUBLIC_PATHS = {f"{API}/auth/login", f"{API}/auth/code", f"{API}/auth/code/login", f"{API}/auth/refresh"}
UNDOCUMENTED_PUBLIC = {f"{API}/health", OPENAPI_PATH}
ERRORS_OF_EVERY_OPERATION = {"400", "429", "500"}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
PARAMETER = re.compile(r"\{[^}]+\}")
UNKNOWN_KEY = "not_in_the_document"


@dataclass(frozen=True)
class Operation:
    """One operation of the document."""

    method: str
    path: str
    spec: dict[str, Any]

    @property
    def secured(self) -> bool:
        return bool(self.spec.get("security"))

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of an OpenAPI document, in document order."""
    return [
        Operation(method.upper(), path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in HTTP_METHODS
    ]


def fill(path: str, value: int = 1) -> str:
    """A document path with every parameter replaced by `value`."""
    return PARAMETER.sub(str(value), path)


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref."""
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def object_schemas(document: dict[str, Any], schema: dict[str, Any], seen: set[str] | None = None) -> Iterator[Any]:
    """Every object schema with properties reachable from `schema` (through $refs, anyOf, items, ...)."""
    seen = set() if seen is None else seen
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen.add(schema["$ref"])
        schema = resolve(document, schema)
    if "properties" in schema:
        yield schema
    children = [*schema.get("properties", {}).values(), *schema.get("anyOf", []), *schema.get("allOf", [])]
    children += [schema[key] for key in ("items", "additionalProperties") if isinstance(schema.get(key), dict)]
    for child in children:
        yield from object_schemas(document, child, seen)


def subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def error_shape(response: Any, code: str, status: int) -> dict[str, Any]:
    """The body of an error response, checked to be the API's one error shape."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert set(body) in ({"error", "message"}, {"error", "message", "fields"}), body
    assert body["error"] == code and isinstance(body["message"], str) and body["message"], body
    return body


@pytest.fixture
def document(mobile: FlaskClient) -> dict[str, Any]:
    response = mobile.get(OPENAPI_PATH)
    assert response.status_code == 200
    value: dict[str, Any] = response.get_json()
    return value


# ---- served, valid, complete ---------------------------------------------------------------------------------------


def test_document_and_health_are_served_without_a_token(mobile: FlaskClient) -> None:
    document = mobile.get(OPENAPI_PATH)
    assert document.status_code == 200 and document.mimetype == "application/json"
    assert document.get_json()["openapi"].startswith("3.")
    health = mobile.get(f"{API}/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    # A bad token does not matter on either.
    for path in (OPENAPI_PATH, f"{API}/health"):
        assert mobile.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 200


def test_document_is_valid_openapi(mobile_app: Flask, document: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, mobile_app)
    schema.validate()
    problems = [str(result.err()) for result in schema.get_all_operations() if not isinstance(result, Ok)]
    assert problems == []
    assert document["info"]["title"] and document["info"]["version"]
    assert len(operations(document)) >= 20
    # The validator does refuse a broken document, so passing above means something.
    broken = copy.deepcopy(document)
    first = operations(broken)[0]
    broken["paths"][first.path][first.method.lower()]["responses"] = "none"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    missing = [str(op) for op in operations(document) if not op.spec.get("summary") or not op.spec.get("description")]
    assert missing == []


def test_only_signing_in_goes_without_a_token(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    ops = operations(document)
    public = {op.path for op in ops if not op.secured}
    assert public == PUBLIC_PATHS
    wrong = [str(op) for op in ops if op.secured and op.spec["security"] != BEARER]
    assert wrong == []
    # Every API address is under /api/v1, and the two unlisted ones stay out of the document.
    assert all(op.path.startswith(f"{API}/") for op in ops)
    assert not UNDOCUMENTED_PUBLIC & set(document["paths"])


def test_every_operation_documents_its_errors_in_the_error_shape(document: dict[str, Any]) -> None:
    problems = []
    for op in operations(document):
        responses = op.spec["responses"]
        needed = ERRORS_OF_EVERY_OPERATION | ({"401"} if op.secured else set())
        missing = needed - set(responses)
        if missing:
            problems.append(f"{op} does not document {sorted(missing)}")
        for status, response in responses.items():
            if (
                int(status) >= 400
                and response.get("content", {}).get("application/json", {}).get("schema") != API_ERROR
            ):
                problems.append(f"{op} documents {status} without the ApiError schema")
    assert problems == [], "\n".join(problems)
    error = document["components"]["schemas"]["ApiError"]
    assert set(error["required"]) == {"error", "message"}


def test_every_request_body_forbids_unknown_fields(document: dict[str, Any]) -> None:
    with_body = [op for op in operations(document) if "requestBody" in op.spec]
    assert {op.path for op in with_body} >= {f"{API}/passes", f"{API}/auth/login"}
    lax = []
    for op in with_body:
        for media_type, content in op.spec["requestBody"]["content"].items():
            for schema in object_schemas(document, content["schema"]):
                if schema.get("additionalProperties") is not False:
                    lax.append(f"{op} {media_type} {schema.get('title')}")
    assert lax == []


def test_request_schemas_are_the_validating_models(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    compared = []
    for model in subclasses(RequestModel):
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        name = generated.get("title", model.__name__)
        if name not in components:
            continue  # a query or path model: its fields are parameters
        served = components[name]
        assert _constraints(served["properties"]) == _constraints(generated["properties"]), name
        assert served.get("required", []) == generated.get("required", []), name
        assert served["additionalProperties"] is False, name
        compared.append(name)
    assert {"PassCreate", "LoginRequest"} <= set(compared)
    # The constraints of PassCreate, as declared on the model, are what the document says.
    fields = PassCreate.model_fields
    uses = components["PassCreate"]["properties"]["uses"]
    assert (uses["minimum"], uses["maximum"]) == (1, _metadata(fields["uses"], "le"))
    assert components["PassCreate"]["properties"]["visitor_name"]["maxLength"] == _metadata(
        fields["visitor_name"], "max_length"
    )


def test_no_two_models_share_a_component_name(document: dict[str, Any]) -> None:
    # flask-openapi3 files schemas under their model's name: a second model of that name replaces the first.
    models: dict[str, list[str]] = {}
    for model in {*subclasses(RequestModel), *subclasses(ResponseModel)}:
        title = model.model_json_schema().get("title", model.__name__)
        models.setdefault(title, []).append(f"{model.__module__}.{model.__qualname__}")
    shared = {name: sorted(where) for name, where in models.items() if len(where) > 1}
    assert shared == {}
    assert {"ApiError", "PassCreate", "PassOut"} <= set(document["components"]["schemas"])


def _constraints(schema: Any) -> Any:
    """A schema without its examples (flask-openapi3's Schema model has no `examples`; they constrain nothing)."""
    if isinstance(schema, dict):
        return {key: _constraints(value) for key, value in schema.items() if key != "examples"}
    if isinstance(schema, list):
        return [_constraints(value) for value in schema]
    return schema


def _metadata(field: Any, name: str) -> Any:
    return next(getattr(item, name) for item in field.metadata if getattr(item, name, None) is not None)


def test_query_parameters_carry_the_model_limits(document: dict[str, Any]) -> None:
    events = next(op for op in operations(document) if str(op) == f"GET {API}/me/events")
    limit = next(p for p in events.spec["parameters"] if p["name"] == "limit")
    declared = BeforeQuery.model_fields["limit"]
    assert limit["in"] == "query"
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (
        _metadata(declared, "ge"),
        _metadata(declared, "le"),
    )


def test_the_share_page_is_not_in_the_document(mobile_app: Flask, document: dict[str, Any]) -> None:
    share_rules = [r.rule for r in mobile_app.url_map.iter_rules() if r.rule.startswith("/v/")]
    assert "/v/<token>" in share_rules
    assert not [path for path in document["paths"] if path.startswith("/v/")]


# ---- what the document forbids is refused ------------------------------------------------------------------------


def _send(client: FlaskClient, op: Operation, media_type: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    url = fill(op.path)
    if media_type == "application/json":
        return client.open(url, method=op.method, json=body, headers=headers)
    return client.open(url, method=op.method, data=body, headers=headers, content_type=media_type)


def test_unknown_fields_are_refused_everywhere(
    mobile: FlaskClient, document: dict[str, Any], make_household: Callable[..., Household]
) -> None:
    home = make_household()
    problems = []
    for op in operations(document):
        for media_type in op.spec.get("requestBody", {}).get("content", {}):
            response = _send(mobile, op, media_type, home.headers, {UNKNOWN_KEY: "1"})
            body = error_shape(response, "invalid_request", 400)
            if UNKNOWN_KEY not in {problem["field"] for problem in body.get("fields", [])}:
                problems.append(f"{op} {media_type} did not name the unknown field: {body}")
    assert problems == []


def _pass_body(home: Household, **changes: Any) -> dict[str, Any]:
    start = utcnow() + timedelta(hours=1)
    body = {
        "visitor_name": "Chen Jie",
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(hours=4)).isoformat(),
        "door_ids": [door.id for door in home.doors],
        "uses": 1,
    }
    return body | changes


def _passes(home: Household) -> int:
    count = db.session.scalar(
        select(func.count()).select_from(VisitorPass).where(VisitorPass.host_id == home.person.id)
    )
    return int(count or 0)


def test_pass_limits_are_the_documented_ones(
    mobile: FlaskClient, document: dict[str, Any], make_household: Callable[..., Household]
) -> None:
    home = make_household()
    properties = document["components"]["schemas"]["PassCreate"]["properties"]
    most = properties["uses"]["maximum"]
    longest = properties["visitor_name"]["maxLength"]

    too_many = mobile.post(f"{API}/passes", json=_pass_body(home, uses=most + 1), headers=home.headers)
    body = error_shape(too_many, "invalid_request", 400)
    assert [problem["field"] for problem in body["fields"]] == ["uses"]
    too_long = mobile.post(
        f"{API}/passes", json=_pass_body(home, visitor_name="x" * (longest + 1)), headers=home.headers
    )
    assert [p["field"] for p in error_shape(too_long, "invalid_request", 400)["fields"]] == ["visitor_name"]
    extra = mobile.post(f"{API}/passes", json=_pass_body(home, host_id=1), headers=home.headers)
    assert [p["field"] for p in error_shape(extra, "invalid_request", 400)["fields"]] == ["host_id"]
    assert _passes(home) == 0

    # At the documented limits the same pass is made.
    ok = mobile.post(
        f"{API}/passes", json=_pass_body(home, uses=most, visitor_name="x" * longest), headers=home.headers
    )
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["pass"]["uses_allowed"] == most
    assert _passes(home) == 1


def test_a_body_that_is_not_json_is_refused_in_the_error_shape(
    mobile: FlaskClient, make_household: Callable[..., Household]
) -> None:
    home = make_household()
    response = mobile.post(f"{API}/passes", data="{not json", headers=home.headers, content_type="application/json")
    error_shape(response, "invalid_request", 400)
    assert _passes(home) == 0
