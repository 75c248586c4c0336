"""How far terminals are with an erasure, as the subject access page says it: all confirmed, waiting, overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.services.privacy.subject_access import ErasureProgress, erasure_progress

NOW = datetime(2025, 5, 3, 12, tzinfo=UTC)


def erasure(hours_ago: float, confirmed: int, waiting: int, *, complete: bool = False) -> dict:
    at = (NOW - timedelta(hours=hours_ago)).isoformat()
    return {
        "erased_on_server_at": at,
        "complete": complete,
        "confirmations": [{"confirmed_at": at} for _ in range(confirmed)] + [{"confirmed_at": None}] * waiting,
        "held_on_terminals": [],
    }


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        (erasure(30, 3, 0, complete=True), ErasureProgress("ok", 3, 3)),
        (erasure(1, 2, 1), ErasureProgress("pending", 2, 3)),
        (erasure(25, 2, 1), ErasureProgress("bad", 2, 3)),
        (erasure(23.9, 0, 1), ErasureProgress("pending", 0, 1)),
        (erasure(2, 0, 0, complete=True), ErasureProgress("ok", 0, 0)),
    ],
)
def test_erasure_progress(entry: dict, want: ErasureProgress) -> None:
    got = erasure_progress(entry, 24, NOW)
    assert got == want and got.waiting == want.total - want.confirmed
