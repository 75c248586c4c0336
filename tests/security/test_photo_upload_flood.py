"""Red team, issue 18 item 8: any consented resident could send 120 selfies a minute, each an expensive decode.

Selfie uploads have their own budget per account (rate_limits.photos, 10 an hour by default), whichever of the
resident's devices sends them: over it, 429 with Retry-After like every other limit, before the upload is read.
"""

# ruff: noqa: F811  (pytest finds the phone-app fixtures by the names imported below; tests take them as arguments)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from mobile_api.config import RateLimitConfig

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

PHOTO = "/api/v1/me/face/photo"
LIMITS = {"default": "10000/minute", "sign_in": "10000/minute", "passes": "10000/hour", "photos": "3/hour"}


def test_the_default_photo_budget_is_small() -> None:
    assert RateLimitConfig().photos == "10/hour"


def test_a_resident_flooding_selfies_is_stopped_on_every_device(
    make_mobile_app: Callable[..., Flask], make_household: Any, bearer: Any
) -> None:
    client = make_mobile_app(rate_limits=LIMITS).test_client()
    home = make_household()
    second_device = bearer(home.account)
    neighbour = make_household()
    junk = {"photo": (b"\xff" * 1000, "selfie.jpg")}

    for _ in range(3):
        # No face engine here (503): what counts is that each upload spends the budget.
        response = client.post(PHOTO, data=dict(junk), content_type="multipart/form-data", headers=home.headers)
        assert response.status_code != 429, response.get_json()

    for headers in (home.headers, second_device):
        response = client.post(PHOTO, data=dict(junk), content_type="multipart/form-data", headers=headers)
        assert response.status_code == 429, response.get_json()
        assert response.get_json()["error"] == "rate_limited" and response.get_json()["message"]
        assert int(response.headers["Retry-After"]) > 0

    # The budget is the account's, not everybody's; and other calls of the same resident still work.
    response = client.post(PHOTO, data=dict(junk), content_type="multipart/form-data", headers=neighbour.headers)
    assert response.status_code != 429
    assert client.get("/api/v1/me/face", headers=home.headers).status_code == 200
