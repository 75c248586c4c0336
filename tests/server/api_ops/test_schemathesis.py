"""The integration API against its own document: schemathesis generates valid and invalid calls of every operation
with a key of every scope, on a world with doors, alarms and events. No answer may be a 5xx, and every answer must
have a documented status and content type and a body that fits the documented schema.

As in tests/mobile/test_schemathesis.py, each operation's strategy is driven with hypothesis here (schemathesis'
pytest loader does not run under pytest 9); the checks are schemathesis' own.
"""

from __future__ import annotations

from collections.abc import Callable

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

from tests.server.api_ops.conftest import World, add_events

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 15


def failure_of(operation: APIOperation, mode: GenerationMode, key: str, door_id: int) -> str:
    """Run generated cases of one operation; what failed, or "" if nothing did."""

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
        # Some generated door ids become the real one, so the found-and-opened path runs too.
        for name, value in (case.path_parameters or {}).items():
            if isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0:
                case.path_parameters[name] = door_id
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        return ""
    except (Exception, BaseExceptionGroup) as exc:  # reported together with the other operations' failures
        return f"{mode.value} {operation.label}: {exc}"
    return ""


def test_every_operation_answers_as_documented(app: Flask, world: World, make_key: Callable[..., str]) -> None:
    add_events(world.north, world.north_gate, 5)
    add_events(world.south, world.south_gate, 5, topic="access.denied")
    key = make_key()
    api = schemathesis.openapi.from_wsgi("/api/ops/v1/openapi.json", app)
    found = [result.ok() for result in api.get_all_operations()]
    assert len(found) == 4
    failures = [
        failure
        for operation in found
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := failure_of(operation, mode, key, world.north_gate.id))
    ]
    assert not failures, "\n\n".join(failures)
