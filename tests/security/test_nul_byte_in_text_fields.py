"""Red team, issue 18 item 6: a NUL byte in a visitor name was stored on SQLite and made PostgreSQL fail (a 500).

Every text input is checked once, centrally: the phone-app API's request models share one string type, the console
refuses control characters before any form reads them, and the ORM refuses NUL in any text column whoever writes
it (CLI, worker, a surface added later). The sweeps below walk the OpenAPI document and the console's URL map and
form classes, so a field added later is covered without editing this file.
"""

# ruff: noqa: F811  (pytest finds the phone-app fixtures by the names imported below; tests take them as arguments)

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import FileField, MultipleFileField

import server.console
from mobile_api.app import OPENAPI_PATH
from server.extensions import db
from server.models import Base, Person, VisitorPass, utcnow
from server.services.errors import DomainError
from server.services.visitors import passes
from tests.conftest import TEST_ACTOR, csrf_token, login

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
BAD_TEXTS = {"NUL": "Wang\x00Fang", "escape": "Wang\x1bFang", "lone surrogate": "Wang\ud800Fang"}


def row_counts() -> dict[str, int]:
    db.session.expire_all()
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def pass_body(home: Any, name: str) -> dict[str, Any]:
    start = utcnow() + timedelta(hours=1)
    return {
        "visitor_name": name,
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(hours=4)).isoformat(),
        "door_ids": [home.doors[0].id],
        "uses": 1,
    }


# ---- the phone-app API --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_a_visitor_name_with_a_control_character_is_a_400_and_stores_nothing(
    mobile: FlaskClient, make_household: Any, bad: str
) -> None:
    home = make_household()
    before = row_counts()

    response = mobile.post("/api/v1/passes", json=pass_body(home, bad), headers=home.headers)

    assert response.status_code == 400, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert body["error"] == "invalid_request" and "visitor_name" in body["message"], body
    assert "control character" in body["message"], body
    assert row_counts() == before
    # The same name without it is fine.
    assert mobile.post("/api/v1/passes", json=pass_body(home, "Wang Fang"), headers=home.headers).status_code == 201


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _is_text(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolve(document, schema)
    options = schema.get("anyOf", [schema])
    return any(_resolve(document, o).get("type") == "string" and "format" not in _resolve(document, o) for o in options)


def text_inputs(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, where, field) of every free-text input of every operation: JSON body, form and query."""
    found = []
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not operation:
                continue
            concrete = path.replace("{id}", "1")
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and _is_text(document, parameter.get("schema", {})):
                    found.append((method, concrete, "query", parameter["name"]))
            for content_type, content in operation.get("requestBody", {}).get("content", {}).items():
                where = "json" if content_type == "application/json" else "form"
                schema = _resolve(document, content["schema"])
                for name, prop in schema.get("properties", {}).items():
                    if _is_text(document, prop):
                        found.append((method, concrete, where, name))
    return found


def test_every_text_field_of_every_operation_refuses_a_nul(mobile: FlaskClient, make_household: Any) -> None:
    home = make_household()
    document = mobile.get(OPENAPI_PATH).get_json()
    inputs = text_inputs(document)
    fields = {field for _, _, _, field in inputs}
    assert {"visitor_name", "login", "password", "device", "refresh_token", "new_password"} <= fields, fields
    before = row_counts()
    for method, path, where, field in inputs:
        if where == "json":
            kwargs: dict[str, Any] = {"json": {field: "x\x00y"}}
        elif where == "form":
            kwargs = {"data": {field: "x\x00y"}, "content_type": "multipart/form-data"}
        else:
            kwargs = {"query_string": {field: "x\x00y"}}
        response = mobile.open(path, method=method.upper(), headers=home.headers, **kwargs)
        assert response.status_code == 400, (method, path, field, response.status_code, response.get_data()[:300])
        problems = {p["field"]: p["problem"] for p in response.get_json().get("fields", [])}
        assert field in problems and "control character" in problems[field], (method, path, field, problems)
    assert row_counts() == before


# ---- the console ----------------------------------------------------------------------------------------------------


def console_forms() -> list[type[FlaskForm]]:
    """Every form class the console declares (its modules imported, then FlaskForm's subclasses walked)."""
    for module in pkgutil.walk_packages(server.console.__path__, "server.console."):
        importlib.import_module(module.name)
    found, todo = [], list(FlaskForm.__subclasses__())
    while todo:
        form = todo.pop()
        todo.extend(form.__subclasses__())
        if form.__module__.startswith("server.console."):
            found.append(form)
    return found


def console_text_fields(app: Flask) -> set[str]:
    """The HTML names of every field of every console form that a user can type text into."""
    names = set()
    with app.test_request_context(method="POST"):
        for form_class in console_forms():
            form = form_class(formdata=None, meta={"csrf": False})
            for field in form:
                if not isinstance(field, FileField | MultipleFileField):
                    names.add(field.name)
    return names


def console_rules(app: Flask) -> list[tuple[str, str]]:
    """(method, url) of every console route, path parameters filled with 1."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = rule.rule
        for argument in rule.arguments:
            url = url.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "1")
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((method, url))
    return found


def test_every_console_route_refuses_a_nul_in_any_form_field(
    app: Flask, client: FlaskClient, make_user: Any, make_household: Any
) -> None:
    make_household()
    make_user()
    login(client, "manager1")
    token = csrf_token(client.get("/people/new").text)
    names = console_text_fields(app)
    assert {"full_name", "visitor_name", "host", "username", "password", "name", "text"} & names, names
    rules = console_rules(app)
    assert ("POST", "/people/new") in rules and ("GET", "/passes") in rules, rules
    before = row_counts()
    # Every route with some field, and every field on a form page and a filtered list (each pair would take minutes).
    ordered = sorted(names)
    cases = [(method, url, ordered[i % len(ordered)]) for i, (method, url) in enumerate(rules)]
    cases += [(method, url, name) for name in ordered for method, url in (("POST", "/people/new"), ("GET", "/passes"))]
    for method, url, name in cases:
        if method == "POST":
            response = client.post(url, data={"csrf_token": token, name: "x\x00y"})
        else:
            response = client.get(url, query_string={name: "x\x00y"})
        assert response.status_code == 400, (method, url, name, response.status_code)
        assert "control character" in response.text, (method, url, name)
    assert row_counts() == before


# ---- every other writer: the ORM refuses NUL in any text column -------------------------------------------------


def test_a_service_writing_a_nul_is_refused_with_a_domain_error(make_household: Any, keys: Any) -> None:
    home = make_household()
    before = row_counts()
    start = utcnow() + timedelta(hours=1)
    with pytest.raises(DomainError) as refused:
        passes.issue_pass(
            db.session, TEST_ACTOR, keys, home.person, "Wang\x00Fang", start, start + timedelta(hours=1), home.doors[:1]
        )
        db.session.flush()
    assert refused.value.http_status == 400 and "visitor_name" in refused.value.message
    db.session.rollback()
    assert row_counts() == before


@pytest.mark.parametrize("column", ["full_name", "unit", "phone"])
def test_any_text_column_refuses_a_nul_on_flush(make_household: Any, column: str) -> None:
    home = make_household()
    person = db.session.get(Person, home.person.id)
    assert person is not None
    setattr(person, column, "1\x00")
    with pytest.raises(DomainError) as refused:
        db.session.commit()
    assert column in refused.value.message
    db.session.rollback()
    db.session.expire_all()
    assert "\x00" not in (getattr(db.session.get(Person, home.person.id), column) or "")


def test_json_columns_are_checked_too(make_household: Any) -> None:
    home = make_household()
    before = row_counts()
    from server.services import audit

    with pytest.raises(DomainError):
        audit.record(db.session, TEST_ACTOR, "test.nul", "person", home.person.id, details={"note": "a\x00b"})
        db.session.flush()
    db.session.rollback()
    assert row_counts() == before
    assert db.session.scalar(select(func.count()).select_from(VisitorPass)) == 0
