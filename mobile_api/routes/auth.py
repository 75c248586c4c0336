"""Signing in and out: password, one-time code, refresh, sign-out, password change."""

from __future__ import annotations

from flask import Response, request

from mobile_api.auth import public_blueprint, resident, resident_blueprint
from mobile_api.code_senders import CodeDeliverer
from mobile_api.errors import error_response
from mobile_api.responses import no_content, reply
from mobile_api.schemas.auth import (
    CodeLoginRequest,
    CodeRequest,
    CodeRequested,
    DeviceList,
    DeviceOut,
    LoginRequest,
    PasswordChange,
    RefreshRequest,
    SessionsEnded,
    TokenPair,
)
from mobile_api.schemas.common import ApiError, IdPath
from mobile_api.state import mobile
from server.extensions import db
from server.models import SessionEnd
from server.services.accounts import app_sessions, code_queue, login_codes, sign_in
from server.services.accounts.app_sessions import IssuedTokens, TokenRefused
from server.services.accounts.sign_in import SignInRefused, TooManyAttempts
from server.services.errors import DomainError

public = public_blueprint("auth", __name__, "Sign-in")
bp = resident_blueprint("session", __name__, "Sign-in")

CODE_SENT = "If this phone or username has the app, a code is on its way."


class CodeSignInUnavailable(DomainError):
    """This installation sends no sign-in codes (no [login_codes] section in the config)."""

    code = "code_sign_in_unavailable"
    http_status = 503


def _refused_with_headers(exc: SignInRefused | TooManyAttempts) -> tuple[Response, int]:
    """The usual error shape, plus the header HTTP asks for with a 401 or a 429."""
    db.session.rollback()
    response, status = error_response(exc.code, exc.message, exc.http_status)
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    else:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gatehouse"'
    return response, status


for _blueprint in (public, bp):
    _blueprint.register_error_handler(SignInRefused, _refused_with_headers)
    _blueprint.register_error_handler(TooManyAttempts, _refused_with_headers)


def _address() -> str:
    return request.remote_addr or "unknown"


def _pair(issued: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        token_type="Bearer",  # noqa: S106 - the token scheme, not a secret
        expires_in=int(mobile().policy.access_ttl.total_seconds()),
        access_expires_at=issued.access_expires_at,
        refresh_token=issued.refresh_token,
        refresh_expires_at=issued.refresh_expires_at,
    )


def _code_deliverer() -> CodeDeliverer:
    deliverer = mobile().deliverer
    if deliverer is None:
        raise CodeSignInUnavailable(
            "Sign-in by code is not available here; sign in with your username or phone number and password."
        )
    return deliverer


@public.post(
    "/auth/login",
    responses={200: TokenPair, 401: ApiError, 429: ApiError},
    summary="Sign in with a password",
    description="Sign in with your username or phone number and password. Answers 401 `bad_credentials` for any "
    "wrong login or password, and 429 `too_many_attempts` (with Retry-After) after repeated failures.",
)
def login(body: LoginRequest) -> tuple[Response, int]:
    issued = sign_in.app_password_sign_in(
        db.session,
        body.login,
        body.password,
        _address(),
        access_key=mobile().access_key,
        policy=mobile().policy,
        device=body.device,
    )
    db.session.commit()
    return reply(_pair(issued))


@public.post(
    "/auth/code",
    responses={202: CodeRequested, 503: ApiError},
    summary="Ask for a sign-in code",
    description="Queues a 6-digit code, sent shortly after by text message to the phone on file for this phone "
    "number or username. The answer, and how long it takes, is the same whether or not an account exists; at most "
    "3 codes go out per 15 minutes. "
    "503 `code_sign_in_unavailable` when this installation sends no codes.",
)
def request_code(body: CodeRequest) -> tuple[Response, int]:
    deliverer = _code_deliverer()
    # Only a queued row, whatever the login names: the answer and its timing tell nobody who has an account.
    code_queue.enqueue(db.session, mobile().queue_key, body.login)
    db.session.commit()
    deliverer.wake()
    return reply(CodeRequested(message=CODE_SENT, expires_in_seconds=int(login_codes.TTL.total_seconds())), 202)


@public.post(
    "/auth/code/login",
    responses={200: TokenPair, 401: ApiError, 429: ApiError, 503: ApiError},
    summary="Sign in with a code",
    description="Sign in with the code sent to your phone. Each code works once, for 5 minutes, and only the newest "
    "code counts. Answers 401 `bad_code` for a wrong, expired or used code, and 429 `too_many_attempts` "
    "(with Retry-After) after repeated failures.",
)
def code_login(body: CodeLoginRequest) -> tuple[Response, int]:
    _code_deliverer()
    issued = sign_in.app_code_sign_in(
        db.session,
        body.login,
        body.code,
        _address(),
        access_key=mobile().access_key,
        code_key=mobile().code_key,
        policy=mobile().policy,
        device=body.device,
    )
    db.session.commit()
    return reply(_pair(issued))


@public.post(
    "/auth/refresh",
    responses={200: TokenPair, 401: ApiError},
    summary="Refresh the tokens",
    description="Swap the refresh token for a new access and refresh token. The old refresh token stops working; "
    "presenting it again signs the device out (401 `refresh_reused`).",
)
def refresh(body: RefreshRequest) -> tuple[Response, int]:
    try:
        issued = app_sessions.refresh(db.session, mobile().access_key, body.refresh_token, mobile().policy)
    except TokenRefused:
        # A replayed token ends its session: that must be kept although the request fails.
        db.session.commit()
        raise
    db.session.commit()
    return reply(_pair(issued))


@bp.post(
    "/auth/logout",
    responses={204: None},
    summary="Sign this device out",
    description="This device's access and refresh tokens stop working at once.",
)
def logout() -> tuple[str, int]:
    app_sessions.end_session(db.session, resident(), SessionEnd.LOGOUT)
    db.session.commit()
    return no_content()


@bp.post(
    "/auth/logout-all",
    responses={200: SessionsEnded},
    summary="Sign every device out",
    description="Every device signed in to your account, this one included, must sign in again.",
)
def logout_all() -> tuple[Response, int]:
    ended = app_sessions.end_all_sessions(db.session, resident())
    db.session.commit()
    return reply(SessionsEnded(sessions_ended=ended))


@bp.put(
    "/me/password",
    responses={200: SessionsEnded, 422: ApiError, 429: ApiError},
    summary="Set or change the password",
    description="Set your first password (after signing in with a code, no current password is needed) or change "
    "it (give the current one; 422 `wrong_password` if it is wrong). Your other devices are signed out; this one "
    "stays signed in.",
)
def change_password(body: PasswordChange) -> tuple[Response, int]:
    me = resident()
    ended = sign_in.change_app_password(
        db.session, me.account, body.current_password, body.new_password, _address(), keep_session=me.app_session.id
    )
    db.session.commit()
    return reply(SessionsEnded(sessions_ended=ended))


@bp.get(
    "/me/devices",
    responses={200: DeviceList},
    summary="List signed-in devices",
    description="The devices signed in to your account, most recently used first; `current` marks this one.",
)
def list_devices() -> tuple[Response, int]:
    me = resident()
    items = [
        DeviceOut(
            id=s.id,
            device=s.device,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            current=s.id == me.app_session.id,
        )
        for s in app_sessions.live_sessions(db.session, me.account)
    ]
    return reply(DeviceList(items=items))


@bp.delete(
    "/me/devices/<int:id>",
    responses={204: None, 404: ApiError},
    summary="Sign a device out",
    description="Sign one of your devices out (this one too, if you give its id). 404 for an id that is not one "
    "of your signed-in devices.",
)
def delete_device(path: IdPath) -> tuple[str, int]:
    app_sessions.end_device(db.session, resident(), path.id)
    db.session.commit()
    return no_content()
