"""Red team, issue 18 item 6: a pass window ending after 2106-02-07 passed every check, then the token could not
hold its end (u32 Unix seconds): PassTokenError, a 500, and on the console an extreme date filter overflowed.

The service now refuses such a window before building anything (bad_window, naming the latest end it accepts), for
the phone app and any other caller; the console's pass list explains a date it cannot use instead of crashing.
"""

# ruff: noqa: F811  (pytest finds the phone-app fixtures by the names imported below; tests take them as arguments)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gatehouse_core.pass_token import LATEST_TIME
from server.extensions import db
from server.models import AuditEntry, JournalEntry, VisitorPass
from server.services.errors import RuleViolation
from server.services.visitors import passes
from tests.conftest import TEST_ACTOR, login

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

WINDOWS = {
    "just past 2106": ("2106-02-06T00:00:00Z", "2106-02-08T00:00:00Z"),
    "one second past the last": ("2106-02-07T00:00:00Z", "2106-02-07T06:28:16Z"),
    "year 9999 west of UTC": ("9999-12-30T00:00:00-14:00", "9999-12-31T23:59:59-14:00"),
    "year 1 east of UTC": ("0001-01-01T00:00:00+14:00", "2030-01-01T00:00:00Z"),
}


def counts() -> tuple[int, int, int]:
    db.session.expire_all()
    return tuple(  # type: ignore[return-value]
        db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (VisitorPass, JournalEntry, AuditEntry)
    )


@pytest.mark.parametrize("window", WINDOWS.values(), ids=WINDOWS.keys())
def test_a_window_the_token_cannot_hold_is_a_clear_refusal(
    mobile: FlaskClient, make_household: Any, window: tuple[str, str]
) -> None:
    home = make_household()
    before = counts()
    body = {"visitor_name": "Wang Fang", "valid_from": window[0], "valid_until": window[1]}
    body.update(door_ids=[home.doors[0].id], uses=1)

    response = mobile.post("/api/v1/passes", json=body, headers=home.headers)

    assert response.status_code in (400, 422), (response.status_code, response.get_data()[:300])
    answer = response.get_json()
    assert answer["error"] in ("bad_window", "invalid_request") and answer["message"], answer
    assert counts() == before


def test_the_service_names_the_latest_end_it_accepts(make_household: Any, keys: Any) -> None:
    home = make_household()
    before = counts()
    start = LATEST_TIME - timedelta(days=2)
    with pytest.raises(RuleViolation) as refused:
        passes.issue_pass(
            db.session, TEST_ACTOR, keys, home.person, "Wang Fang", start, LATEST_TIME + timedelta(seconds=1),
            home.doors[:1], now=start - timedelta(days=1),
        )  # fmt: skip
    assert refused.value.code == "bad_window"
    assert "2106-02-07 06:28:15" in refused.value.message
    db.session.rollback()
    assert counts() == before
    # The very last second still works, and its token says so.
    issued = passes.issue_pass(
        db.session, TEST_ACTOR, keys, home.person, "Wang Fang", start, LATEST_TIME, home.doors[:1],
        now=start - timedelta(days=1),
    )  # fmt: skip
    assert issued.visitor_pass.valid_until == LATEST_TIME and issued.token.startswith("GHP1:")
    assert datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC) == LATEST_TIME


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31", "from=0001-01-01&to=0001-01-01"])
def test_the_consoles_pass_list_explains_a_date_it_cannot_use(
    client: FlaskClient, make_user: Any, make_household: Any, query: str
) -> None:
    make_household()
    make_user()
    login(client, "manager1")

    response = client.get(f"/passes?{query}")

    assert response.status_code in (200, 400), response.status_code
    assert "2106" in response.text
