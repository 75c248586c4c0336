"""Red team, issue 18 item 6: a JSON body nested 50,000 deep made the parser raise RecursionError, a 500.

Every operation of the phone-app API that takes a JSON body (walked from the OpenAPI document, so one added later
is covered) answers a deeply nested body with a 400 in the API's error shape, and nothing is written.
"""

# ruff: noqa: F811  (pytest finds the phone-app fixtures by the names imported below; tests take them as arguments)

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from mobile_api.app import OPENAPI_PATH
from server.extensions import db
from server.models import Base

# The phone-app fixtures, shared with tests/mobile (pytest finds fixtures by name in this module).
from tests.mobile.conftest import (  # noqa: F401
    bearer,
    code_spool,
    make_account,
    make_household,
    make_mobile_app,
    mobile,
    mobile_app,
)

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def json_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation whose request body is JSON, path parameters filled with 1."""
    found = []
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation and "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method, path.replace("{id}", "1")))
    return found


def row_counts() -> dict[str, int]:
    db.session.expire_all()
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [50_000, 1_000, 100])
def test_a_deeply_nested_body_is_a_clear_400_everywhere(mobile: FlaskClient, make_household: Any, depth: int) -> None:
    home = make_household()
    operations = json_operations(mobile.get(OPENAPI_PATH).get_json())
    assert ("post", "/api/v1/passes") in operations and ("post", "/api/v1/auth/login") in operations
    before = row_counts()
    for method, path in operations:
        response = mobile.open(
            path, method=method.upper(), data=nested(depth), content_type="application/json", headers=home.headers
        )
        assert response.status_code == 400, (method, path, response.status_code, response.get_data()[:200])
        body = response.get_json()
        assert set(body) >= {"error", "message"} and body["message"], body
        assert "nested" in body["message"], body
    assert row_counts() == before


def test_a_deep_object_inside_a_field_is_refused_too(mobile: FlaskClient, make_household: Any) -> None:
    home = make_household()
    body = '{"visitor_name": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}"
    response = mobile.post("/api/v1/passes", data=body, content_type="application/json", headers=home.headers)
    assert response.status_code == 400 and response.get_json()["error"] == "too_deep", response.get_json()


def test_an_ordinary_body_still_works(mobile: FlaskClient, make_household: Any) -> None:
    home = make_household()
    response = mobile.post("/api/v1/passes", json={"visitor_name": "Wang Fang"}, headers=home.headers)
    # Missing fields are named as before: the bounded parse changes nothing for a normal body.
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
