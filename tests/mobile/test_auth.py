"""Signing in to the residents' app: password, one-time code, refresh, sign-out, password and devices."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from server.extensions import db
from server.models import AppSession, LoginAttempt, LoginCode, Person, ResidentAccount, SessionEnd
from server.services.accounts import app_accounts, app_sessions, login_throttle
from server.services.accounts.app_sessions import AUDIENCE, ISSUER, IssuedTokens, TokenPolicy
from server.services.people import people
from tests.conftest import PASSWORD, TEST_ACTOR
from tests.mobile.conftest import Household, deliver_codes, sent_codes

PHONE = "+86 138 0000 0001"
PHONE_KEY = "+8613800000001"
NEW_PASSWORD = "a new and longer password"
CODE_MESSAGE = "If this phone or username has the app, a code is on its way."
TIGHT_LIMITS = {"default": "10000/minute", "sign_in": "3/minute", "passes": "10000/hour"}


def post(client: FlaskClient, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
    """POST JSON to /api/v1."""
    return client.post(f"/api/v1{path}", json=body if body is not None else {}, headers=headers or {})


def password_login(client: FlaskClient, login: str, password: str = PASSWORD, device: str = "Pixel 8"):
    return post(client, "/auth/login", {"login": login, "password": password, "device": device})


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["error"] == code
    assert body["message"]
    assert set(body) <= {"error", "message", "fields"}
    return body


def assert_refused_token(response: Any, code: str) -> None:
    assert_error(response, 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def household(make_household: Callable[..., Household]) -> Household:
    """A resident signed up with username 'resident1', PHONE and PASSWORD."""
    return make_household(phone=PHONE)


@pytest.fixture
def sign_in(app: Flask, keys: ServerKeys) -> Callable[..., IssuedTokens]:
    """Sign a device in through the service layer (no password hashing), as the API would."""

    def make(account: ResidentAccount, policy: TokenPolicy | None = None, device: str = "") -> IssuedTokens:
        key = app_sessions.access_key(keys.session_secret)
        issued = app_sessions.start_session(
            db.session, key, account, policy or TokenPolicy(), device=device, how="test"
        )
        db.session.commit()
        return issued

    return make


def devices(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/devices", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


# ---- password sign-in ------------------------------------------------------------------------------------------


def test_sign_in_by_username_or_phone_in_any_format(mobile: FlaskClient, household: Household) -> None:
    for login in ("resident1", "Resident1", PHONE, "+86-138-0000-0001", PHONE_KEY):
        response = password_login(mobile, login)
        assert response.status_code == 200, (login, response.get_data(as_text=True))
        pair = response.get_json()
        assert set(pair) == {
            "access_token",
            "token_type",
            "expires_in",
            "access_expires_at",
            "refresh_token",
            "refresh_expires_at",
        }
        assert pair["token_type"] == "Bearer"
        assert pair["expires_in"] == 600
        assert pair["refresh_token"].startswith("ghr_")
        mine = [d for d in devices(mobile, bearer_of(pair["access_token"])) if d["current"]]
        assert len(mine) == 1
        assert mine[0]["device"] == "Pixel 8"


def test_wrong_password_and_unknown_login_answer_alike(mobile: FlaskClient, household: Household) -> None:
    wrong = password_login(mobile, "resident1", "not the password")
    unknown = password_login(mobile, "nobody-here", PASSWORD)
    unknown_phone = password_login(mobile, "+86 139 9999 9999", PASSWORD)
    bodies = [assert_error(r, 401, "bad_credentials") for r in (wrong, unknown, unknown_phone)]
    assert bodies[0] == bodies[1] == bodies[2]
    for response in (wrong, unknown, unknown_phone):
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "access_token" not in response.get_data(as_text=True)


def test_disabled_account_cannot_sign_in_and_its_token_stops(mobile: FlaskClient, household: Household) -> None:
    assert mobile.get("/api/v1/me/devices", headers=household.headers).status_code == 200
    app_accounts.disable_account(db.session, TEST_ACTOR, household.person)
    db.session.commit()
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=household.headers), "session_revoked")
    assert_error(password_login(mobile, "resident1"), 401, "bad_credentials")


def test_moved_out_person_cannot_sign_in_and_their_token_stops(mobile: FlaskClient, household: Household) -> None:
    assert mobile.get("/api/v1/me/devices", headers=household.headers).status_code == 200
    people.move_out(db.session, TEST_ACTOR, household.person)
    db.session.commit()
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=household.headers), "account_disabled")
    assert_error(password_login(mobile, "resident1"), 401, "bad_credentials")


def test_repeated_failures_are_throttled_whatever_the_phone_format(
    mobile: FlaskClient, household: Household, make_household: Callable[..., Household]
) -> None:
    formats = [PHONE, "+86-138-0000-0001", PHONE_KEY, " +86 (138) 0000 0001 ", "+86.138.0000.0001"]
    for login in formats:
        assert_error(password_login(mobile, login, "wrong password"), 401, "bad_credentials")
    # The sixth try is refused before the password is looked at, even the right one.
    refused = password_login(mobile, PHONE)
    assert_error(refused, 429, "too_many_attempts")
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60 + 1
    # Another resident at the same address is not locked out by someone else's failures.
    neighbour = make_household()
    assert password_login(mobile, neighbour.account.username or "").status_code == 200


def test_a_successful_sign_in_forgets_earlier_failures(mobile: FlaskClient, household: Household) -> None:
    def failures() -> int:
        db.session.expire_all()
        # One counter per account, whichever login is typed (issue 18 item 4).
        key = f"account:{household.account.id}"
        return len(db.session.scalars(select(LoginAttempt).where(LoginAttempt.username == key)).all())

    assert_error(password_login(mobile, "resident1", "wrong password"), 401, "bad_credentials")
    assert failures() == 1
    assert password_login(mobile, "resident1").status_code == 200
    assert failures() == 0


# ---- one-time codes --------------------------------------------------------------------------------------------


def request_code(client: FlaskClient, login: str):
    """Ask for a code, then let the deliverer send what was queued (its thread would, right after)."""
    response = post(client, "/auth/code", {"login": login})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"message": CODE_MESSAGE, "expires_in_seconds": 300}
    deliver_codes(client.application)
    return response


def code_login(client: FlaskClient, login: str, code: str, device: str = "Phone"):
    return post(client, "/auth/code/login", {"login": login, "code": code, "device": device})


def test_code_sign_in_end_to_end(mobile: FlaskClient, household: Household, code_spool: Path) -> None:
    request_code(mobile, PHONE)
    [message] = sent_codes(code_spool)
    assert message["phone"] == PHONE_KEY
    code = message["code"]
    assert len(code) == 6 and code.isdigit()
    assert code in message["text"] and "Test site" in message["text"]

    signed_in = code_login(mobile, "+86-138-0000-0001", code)
    assert signed_in.status_code == 200, signed_in.get_data(as_text=True)
    assert devices(mobile, bearer_of(signed_in.get_json()["access_token"]))[0]["current"] is True
    # A code works once.
    assert_error(code_login(mobile, PHONE, code), 401, "bad_code")

    # A new code voids the one before it; the username reaches the same phone.
    request_code(mobile, "resident1")
    request_code(mobile, PHONE)
    codes = [m["code"] for m in sent_codes(code_spool)]
    assert len(codes) == 3
    if codes[1] != codes[2]:
        assert_error(code_login(mobile, PHONE, codes[1]), 401, "bad_code")
    assert code_login(mobile, "resident1", codes[2]).status_code == 200

    # No fourth code within 15 minutes, and the answer does not say so.
    request_code(mobile, PHONE)
    assert len(sent_codes(code_spool)) == 3


def test_wrong_codes_count_and_the_sixth_try_fails_even_with_the_right_code(
    mobile: FlaskClient, household: Household, code_spool: Path
) -> None:
    request_code(mobile, PHONE)
    code = sent_codes(code_spool)[0]["code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert_error(code_login(mobile, PHONE, wrong), 401, "bad_code")
    refused = code_login(mobile, PHONE, code)
    assert_error(refused, 429, "too_many_attempts")
    assert int(refused.headers["Retry-After"]) >= 1
    db.session.expire_all()
    [pending] = db.session.scalars(select(LoginCode)).all()
    assert pending.attempts == 5
    # Past the sign-in throttle (it forgets after 15 minutes), the code itself has no tries left.
    login_throttle.clear(db.session, login_throttle.Surface.APP, f"account:{household.account.id}")
    db.session.commit()
    assert_error(code_login(mobile, PHONE, code), 401, "bad_code")


def test_a_code_for_an_unknown_phone_is_answered_alike_and_sends_nothing(
    mobile: FlaskClient, household: Household, code_spool: Path
) -> None:
    request_code(mobile, "+86 139 9999 9999")
    request_code(mobile, "nobody-here")
    assert sent_codes(code_spool) == []
    assert_error(code_login(mobile, "+86 139 9999 9999", "123456"), 401, "bad_code")


def test_code_sign_in_is_unavailable_without_a_login_codes_section(
    make_mobile_app: Callable[..., Flask], household: Household
) -> None:
    client = make_mobile_app(login_codes=None).test_client()
    body = assert_error(post(client, "/auth/code", {"login": PHONE}), 503, "code_sign_in_unavailable")
    assert "password" in body["message"]
    assert_error(code_login(client, PHONE, "123456"), 503, "code_sign_in_unavailable")


def test_a_failing_sender_is_logged_and_answered_alike(
    make_mobile_app: Callable[..., Flask], household: Household, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_mobile_app(login_codes={"sender": "command", "command": ["false", "{phone}"]}).test_client()
    with caplog.at_level(logging.DEBUG):
        request_code(client, PHONE)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "could not be sent" in warnings[0].getMessage()
    assert PHONE_KEY not in caplog.text and PHONE not in caplog.text
    db.session.expire_all()
    assert db.session.scalars(select(LoginCode)).all() == []


@pytest.mark.parametrize(
    "body",
    [
        {"login": PHONE, "code": "12345"},
        {"login": PHONE, "code": "1234567"},
        {"login": PHONE, "code": "12a456"},
        {"login": "", "code": "123456"},
        {"login": PHONE, "code": "123456", "remember": True},
    ],
)
def test_malformed_code_sign_in_is_refused(mobile: FlaskClient, body: dict[str, Any]) -> None:
    assert_error(post(mobile, "/auth/code/login", body), 400, "invalid_request")


def shown(response: Any) -> str:
    """What a response shows besides random tokens (in which six digits in a row may occur by chance)."""
    body = {k: v for k, v in response.get_json().items() if k not in ("access_token", "refresh_token")}
    return json.dumps(body) + str(response.headers)


def test_no_response_or_log_line_shows_the_password_or_the_code(
    mobile: FlaskClient, household: Household, code_spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = []
    with caplog.at_level(logging.DEBUG):
        texts.append(shown(password_login(mobile, "resident1", "wrong " + PASSWORD)))
        texts.append(shown(password_login(mobile, "resident1")))
        texts.append(shown(request_code(mobile, PHONE)))
        code = sent_codes(code_spool)[0]["code"]
        texts.append(shown(code_login(mobile, PHONE, f"{(int(code) + 1) % 1_000_000:06d}")))
        texts.append(shown(code_login(mobile, PHONE, code)))
    assert any("sign-in code sent" in r.getMessage() for r in caplog.records)
    for text in [*texts, caplog.text]:
        assert PASSWORD not in text
        assert code not in text
        assert PHONE_KEY not in text and PHONE not in text


# ---- refresh and access tokens ---------------------------------------------------------------------------------


def refresh(client: FlaskClient, token: str):
    return post(client, "/auth/refresh", {"refresh_token": token})


def test_refresh_rotates_and_a_replayed_token_ends_the_session(
    mobile: FlaskClient, household: Household, sign_in: Callable[..., IssuedTokens]
) -> None:
    first = sign_in(household.account)
    rotated = refresh(mobile, first.refresh_token)
    assert rotated.status_code == 200, rotated.get_data(as_text=True)
    second = rotated.get_json()
    assert second["refresh_token"] != first.refresh_token
    assert second["access_token"] != first.access_token
    assert mobile.get("/api/v1/me/devices", headers=bearer_of(second["access_token"])).status_code == 200

    assert_refused_token(refresh(mobile, first.refresh_token), "refresh_reused")
    # Both holders of the copied token are signed out: the new pair no longer works either.
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=bearer_of(second["access_token"])), "session_revoked")
    assert_refused_token(refresh(mobile, second["refresh_token"]), "session_revoked")
    db.session.expire_all()
    ended = db.session.get(AppSession, first.session.id)
    assert ended is not None and ended.revoked_reason is SessionEnd.REFRESH_REUSED
    # Other devices of the same resident are not affected.
    assert mobile.get("/api/v1/me/devices", headers=household.headers).status_code == 200


@pytest.mark.parametrize("token", ["ghr_not-a-real-token", "garbage", "ghr_" + "x" * 150])
def test_unknown_refresh_tokens_are_refused(mobile: FlaskClient, household: Household, token: str) -> None:
    response = refresh(mobile, token)
    assert response.status_code == 401
    assert response.get_json()["error"] == "refresh_invalid"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _claims(issued: IssuedTokens, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(issued.session.account_id),
        "sid": issued.session.id,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


def test_an_expired_access_token_is_refused(
    mobile: FlaskClient, household: Household, keys: ServerKeys, sign_in: Callable[..., IssuedTokens]
) -> None:
    issued = sign_in(household.account)
    now = int(time.time())
    token = jwt.encode(
        _claims(issued, iat=now - 1200, exp=now - 600), app_sessions.access_key(keys.session_secret), "HS256"
    )
    response = mobile.get("/api/v1/me/devices", headers=bearer_of(token))
    assert_refused_token(response, "token_expired")
    assert "token_expired" in response.headers["WWW-Authenticate"]
    # An access token made with a negative lifetime by the service is just as expired.
    stale = sign_in(household.account, TokenPolicy(access_ttl=-TokenPolicy().access_ttl))
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=bearer_of(stale.access_token)), "token_expired")


def test_forged_access_tokens_are_refused(
    mobile: FlaskClient,
    make_household: Callable[..., Household],
    keys: ServerKeys,
    sign_in: Callable[..., IssuedTokens],
) -> None:
    mine, theirs = make_household(), make_household()
    issued = sign_in(mine.account)
    key = app_sessions.access_key(keys.session_secret)
    forgeries = {
        "wrong key": jwt.encode(_claims(issued), b"k" * 32, "HS256"),
        "alg none": jwt.encode(_claims(issued), None, "none"),
        "garbage": "not.a.token",
        "another audience": jwt.encode(_claims(issued, aud="gatehouse-console"), key, "HS256"),
        "another account": jwt.encode(_claims(issued, sub=str(theirs.account.id)), key, "HS256"),
        "no session": jwt.encode({k: v for k, v in _claims(issued).items() if k != "sid"}, key, "HS256"),
        "session as text": jwt.encode(_claims(issued, sid=str(issued.session.id)), key, "HS256"),
    }
    for name, token in forgeries.items():
        response = mobile.get("/api/v1/me/devices", headers=bearer_of(token))
        assert response.status_code == 401, name
        assert_refused_token(response, "token_invalid")
    # The genuine token of the same session works: the refusals above were for the forgeries.
    assert (
        mobile.get("/api/v1/me/devices", headers=bearer_of(jwt.encode(_claims(issued), key, "HS256"))).status_code
        == 200
    )


@pytest.mark.parametrize("header", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}])
def test_a_missing_token_is_refused(mobile: FlaskClient, header: dict[str, str]) -> None:
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=header), "token_missing")


# ---- signing out -----------------------------------------------------------------------------------------------


def test_logout_ends_this_device_only(
    mobile: FlaskClient, household: Household, sign_in: Callable[..., IssuedTokens]
) -> None:
    this = sign_in(household.account)
    response = post(mobile, "/auth/logout", headers=bearer_of(this.access_token))
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=bearer_of(this.access_token)), "session_revoked")
    assert_refused_token(refresh(mobile, this.refresh_token), "session_revoked")
    assert mobile.get("/api/v1/me/devices", headers=household.headers).status_code == 200


def test_logout_all_ends_every_device(
    mobile: FlaskClient, make_household: Callable[..., Household], sign_in: Callable[..., IssuedTokens]
) -> None:
    household, neighbour = make_household(), make_household()
    others = [sign_in(household.account), sign_in(household.account)]
    response = post(mobile, "/auth/logout-all", headers=household.headers)
    assert response.status_code == 200
    assert response.get_json() == {"sessions_ended": 3}
    for headers in [household.headers, *(bearer_of(o.access_token) for o in others)]:
        assert_refused_token(mobile.get("/api/v1/me/devices", headers=headers), "session_revoked")
    assert mobile.get("/api/v1/me/devices", headers=neighbour.headers).status_code == 200


# ---- password --------------------------------------------------------------------------------------------------


def change_password(client: FlaskClient, headers: dict[str, str], new: str, current: str | None = None):
    body: dict[str, Any] = {"new_password": new}
    if current is not None:
        body["current_password"] = current
    return client.put("/api/v1/me/password", json=body, headers=headers)


def test_password_set_after_code_sign_in_then_changed(
    mobile: FlaskClient,
    make_site: Callable[..., Any],
    make_person: Callable[..., Person],
    make_account: Callable[..., ResidentAccount],
    sign_in: Callable[..., IssuedTokens],
    code_spool: Path,
) -> None:
    person = make_person(make_site(), "Zhang Min", phone=PHONE)
    account = make_account(person, password=None)
    # No password yet: password sign-in fails like any wrong password.
    assert_error(password_login(mobile, PHONE, PASSWORD), 401, "bad_credentials")
    request_code(mobile, PHONE)
    phone = code_login(mobile, PHONE, sent_codes(code_spool)[0]["code"]).get_json()
    here = bearer_of(phone["access_token"])
    tablet = sign_in(account, device="Tablet")

    first = change_password(mobile, here, PASSWORD)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json() == {"sessions_ended": 1}
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=bearer_of(tablet.access_token)), "session_revoked")
    assert [d["current"] for d in devices(mobile, here)] == [True]

    # Now that there is a password, changing it needs it.
    assert_error(change_password(mobile, here, NEW_PASSWORD), 422, "wrong_password")
    assert_error(change_password(mobile, here, NEW_PASSWORD, "not the password"), 422, "wrong_password")
    laptop = sign_in(account, device="Laptop")
    changed = change_password(mobile, here, NEW_PASSWORD, PASSWORD)
    assert changed.status_code == 200
    assert changed.get_json() == {"sessions_ended": 1}
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=bearer_of(laptop.access_token)), "session_revoked")
    assert mobile.get("/api/v1/me/devices", headers=here).status_code == 200
    assert password_login(mobile, PHONE, NEW_PASSWORD).status_code == 200
    assert_error(password_login(mobile, PHONE, PASSWORD), 401, "bad_credentials")


def test_a_short_new_password_is_refused_and_changes_nothing(mobile: FlaskClient, household: Household) -> None:
    before = household.account.password_hash
    assert_error(change_password(mobile, household.headers, "short", PASSWORD), 400, "invalid_request")
    db.session.expire_all()
    assert household.account.password_hash == before
    assert mobile.get("/api/v1/me/devices", headers=household.headers).status_code == 200


# ---- devices ---------------------------------------------------------------------------------------------------


def test_devices_list_and_sign_out_one(
    mobile: FlaskClient, make_household: Callable[..., Household], sign_in: Callable[..., IssuedTokens]
) -> None:
    household, neighbour = make_household(), make_household()
    tablet = sign_in(household.account, device="  Galaxy   Tab  ")
    listed = devices(mobile, household.headers)
    assert listed[0]["id"] == tablet.session.id
    assert [d["device"] for d in listed] == ["Galaxy Tab", ""]
    assert [d["current"] for d in listed] == [False, True]
    assert set(listed[0]) == {"id", "device", "created_at", "last_used_at", "current"}

    # Another resident's device, an unknown id and an ended session are all simply not found.
    their_id = devices(mobile, neighbour.headers)[0]["id"]
    for device_id in (their_id, 999_999):
        assert_error(mobile.delete(f"/api/v1/me/devices/{device_id}", headers=household.headers), 404, "not_found")
    assert mobile.get("/api/v1/me/devices", headers=neighbour.headers).status_code == 200

    assert mobile.delete(f"/api/v1/me/devices/{tablet.session.id}", headers=household.headers).status_code == 204
    assert_refused_token(mobile.get("/api/v1/me/devices", headers=bearer_of(tablet.access_token)), "session_revoked")
    assert [d["current"] for d in devices(mobile, household.headers)] == [True]
    assert_error(mobile.delete(f"/api/v1/me/devices/{tablet.session.id}", headers=household.headers), 404, "not_found")


def test_too_many_devices_sign_the_oldest_out(
    make_mobile_app: Callable[..., Flask], household: Household, sign_in: Callable[..., IssuedTokens]
) -> None:
    client = make_mobile_app(tokens={"max_devices": 2}).test_client()
    # household.headers is the oldest session; two password sign-ins make room by ending it.
    pairs = [password_login(client, "resident1", device=f"Phone {n}").get_json() for n in (1, 2)]
    assert_refused_token(client.get("/api/v1/me/devices", headers=household.headers), "session_revoked")
    listed = devices(client, bearer_of(pairs[1]["access_token"]))
    assert sorted(d["device"] for d in listed) == ["Phone 1", "Phone 2"]
    db.session.expire_all()
    reasons = db.session.scalars(select(AppSession.revoked_reason).where(AppSession.revoked_at.is_not(None))).all()
    assert reasons == [SessionEnd.REPLACED]


# ---- rate limit ------------------------------------------------------------------------------------------------


def test_sign_in_requests_are_rate_limited_per_address(make_mobile_app: Callable[..., Flask]) -> None:
    client = make_mobile_app(rate_limits=TIGHT_LIMITS).test_client()
    for _ in range(3):
        assert refresh(client, "ghr_unknown").status_code == 401
    limited = refresh(client, "ghr_unknown")
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    # Signed-in calls have their own, separate limit.
    assert_refused_token(client.get("/api/v1/me/devices"), "token_missing")


def test_every_sign_in_route_draws_on_one_budget_per_address(make_mobile_app: Callable[..., Flask]) -> None:
    client = make_mobile_app(rate_limits=TIGHT_LIMITS).test_client()
    assert refresh(client, "ghr_unknown").status_code == 401
    assert client.post("/api/v1/auth/login", json={"login": "nobody", "password": "x" * 12}).status_code == 401
    assert client.post("/api/v1/auth/code", json={"login": "nobody"}).status_code == 202
    # The fourth sign-in request of any kind is over the shared 3/minute.
    assert_error(
        client.post("/api/v1/auth/code/login", json={"login": "nobody", "code": "123456"}), 429, "rate_limited"
    )


def test_the_openapi_document_describes_sign_in(mobile: FlaskClient) -> None:
    paths = mobile.get("/api/v1/openapi.json").get_json()["paths"]
    login = paths["/api/v1/auth/login"]["post"]
    assert {"200", "401", "429"} <= set(login["responses"])
    assert "security" not in login
    assert paths["/api/v1/me/devices"]["get"]["security"] == [{"bearer": []}]
    assert {"204", "404", "401"} <= set(paths["/api/v1/me/devices/{id}"]["delete"]["responses"])
    assert {"202", "503"} <= set(paths["/api/v1/auth/code"]["post"]["responses"])
    assert {"200", "422", "429"} <= set(paths["/api/v1/me/password"]["put"]["responses"])
