"""The API against its own document: schemathesis generates requests for every operation the app serves.

A signed-in resident with real records (templates, consents, receipts, credentials, a pass, events, two devices)
calls every operation with generated valid and invalid input. Each case gets a fresh access token, as some
operations sign out or change the password. No answer may be a 5xx, and every answer must have a documented
status, the documented content type and a body that validates against the documented schema.

schemathesis' own pytest loader (`schemathesis.pytest.from_fixture`) does not run under pytest 9 (it sets
`node._nodeid`), so each operation's strategy is driven with hypothesis here; the checks are schemathesis' own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gatehouse_core.keyring import ServerKeys
from mobile_api.app import OPENAPI_PATH
from server.extensions import db
from server.models import AppSession, Person, ResidentAccount, SessionEnd, utcnow
from server.services.accounts import app_sessions
from server.services.privacy import privacy
from tests.mobile.test_authorization_matrix import Holdings, owned_field, resident_with_records
from tests.mobile.test_openapi import PUBLIC_PATHS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Cases per operation and mode: each operation's refusals and answers in seconds, on both databases.
EXAMPLES = 12
# Run last: these end the resident's other devices, or (failed sign-ins) make the address wait.
LATE = ("/auth/logout-all", "/me/password")


@pytest.fixture
def zhang(keys: ServerKeys, make_account: Callable[..., ResidentAccount], bearer: Any) -> Holdings:
    return resident_with_records(keys, make_account, bearer)


@contextmanager
def fresh_token(keys: ServerKeys, account: ResidentAccount) -> Iterator[str]:
    """A new session's access token (cheap: no password hashing), signed out after the case.

    Signed out so the resident's own devices stay below the device cap, which would sign them out instead.
    """
    key = app_sessions.access_key(keys.session_secret)
    issued = app_sessions.start_session(db.session, key, account, app_sessions.TokenPolicy(), how="test")
    db.session.commit()
    session_id = issued.session.id
    yield issued.access_token
    db.session.expire_all()
    app_session = db.session.get(AppSession, session_id)
    if app_session is not None and app_session.revoked_at is None:
        app_session.revoked_at = utcnow()
        app_session.revoked_reason = SessionEnd.LOGOUT
        db.session.commit()


def realistic_bodies(zhang: Holdings) -> dict[str, dict[str, Any]]:
    """Bodies that get past the business rules, so the created-and-answered paths are checked too."""
    person = db.session.get(Person, zhang.person_id)
    assert person is not None
    notice = privacy.current_notice(db.session, person.site)
    assert notice is not None
    start = utcnow() + timedelta(hours=1)
    return {
        "POST /api/v1/passes": {
            "visitor_name": "Liu Yang",
            "valid_from": start.isoformat(),
            "valid_until": (start + timedelta(hours=2)).isoformat(),
            "door_ids": [door.id for door in person.site.doors],
            "uses": 2,
        },
        "POST /api/v1/me/face/consent": {"notice_version": notice.version, "notice_sha256": notice.sha256},
    }


def order(operation: APIOperation) -> tuple[int, str]:
    """Reads first, then changes, then what signs devices out, then signing in."""
    if operation.path in PUBLIC_PATHS:
        return (3, operation.label)
    if operation.path.endswith(LATE):
        return (2, operation.label)
    return (0 if operation.method.upper() == "GET" else 1, operation.label)


def failure_of(
    operation: APIOperation, mode: GenerationMode, zhang: Holdings, keys: ServerKeys, realistic: dict[str, Any]
) -> str:
    """Run `EXAMPLES` generated cases of one operation; what failed, or "" if nothing did."""
    owned = getattr(zhang, owned_field(operation.path), None)
    body = realistic.get(operation.label) if mode is GenerationMode.POSITIVE else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        # Some generated ids and bodies become real ones, so the found-and-answered paths run too.
        for name, value in (case.path_parameters or {}).items():
            if owned and isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0:
                case.path_parameters[name] = owned[value % len(owned)]
        if body is not None and len(repr(case.body)) % 2 == 0:
            case.body = dict(body)
        with fresh_token(keys, zhang.account) as token:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        return ""  # nothing invalid can be sent to an operation without inputs
    except (Exception, BaseExceptionGroup) as exc:  # reported together with the other operations' failures
        return f"{mode.value} {operation.label}: {exc}"
    return ""


def test_every_operation_answers_as_documented(mobile_app: Flask, zhang: Holdings, keys: ServerKeys) -> None:
    api = schemathesis.openapi.from_wsgi(OPENAPI_PATH, mobile_app)
    found = sorted((result.ok() for result in api.get_all_operations()), key=order)
    assert len(found) >= 20
    realistic = realistic_bodies(zhang)
    assert set(realistic) <= {operation.label for operation in found}
    failures = [
        failure
        for operation in found
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := failure_of(operation, mode, zhang, keys, realistic))
    ]
    assert not failures, "\n\n".join(failures)
