"""Signing in under the failed-attempt throttle: one function per use case, for the console and the phone app.

Every use case runs the same sequence: record the attempt as a failure (committed), check the limit for the login
and the address counting it, verify the password or code, then clear the login's failures if it was right. The
throttle's rules live here and in login_throttle only, so a change to them reaches every surface at once.
"""

from __future__ import annotations

from server.models import ConsoleUser, LoginAttempt, ResidentAccount
from server.services import audit
from server.services.accounts import app_accounts, app_sessions, login_codes, login_throttle
from server.services.accounts.app_sessions import IssuedTokens, TokenPolicy
from server.services.accounts.login_throttle import Surface
from server.services.accounts.users import authenticate
from server.services.audit import Actor
from server.services.errors import DomainError, RuleViolation
from server.services.session import DbSession


class SignInRefused(DomainError):
    """A wrong login, password or code (the same answer whether or not the account exists)."""

    code = "bad_credentials"
    http_status = 401


class TooManyAttempts(DomainError):
    """Too many failed attempts for this login or from this address; `retry_after` seconds to wait."""

    code = "too_many_attempts"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _app_key(session: DbSession, login: str) -> str:
    """One counter per app account, whichever of its logins is typed and however: its username and its phone do
    not each buy the limit. A login that names no account counts under its own spelling."""
    account = app_accounts.find_account(session, login)
    if account is not None:
        return _account_key(account)
    text = login.strip()
    return app_accounts.phone_key(text) or text.lower()


def _account_key(account: ResidentAccount) -> str:
    return f"account:{account.id}"


def _begin(session: DbSession, surface: Surface, key: str, address: str, *, count_address: bool = True) -> LoginAttempt:
    """Record the attempt as a failure and commit it, then refuse (TooManyAttempts) if it is one too many.

    Recording first is what makes the limit hold under concurrency: every attempt counts every other one recorded
    before it, so no more than the limit of them go on to check a password. A refused attempt is withdrawn (it
    checked nothing); the caller's rollback cannot undo the committed failure of an attempt that goes on.
    """
    attempt = login_throttle.record_attempt(session, surface, key, address)
    session.commit()
    verdict = login_throttle.check(session, surface, key, address, count_address=count_address)
    if not verdict.allowed:
        login_throttle.withdraw(session, attempt)
        session.commit()
        raise TooManyAttempts(
            f"Too many failed attempts; wait {verdict.retry_after_s} seconds and try again.",
            retry_after=verdict.retry_after_s,
        )
    return attempt


def console_sign_in(
    session: DbSession, username: str, password: str, address: str, *, known_browser: bool = False
) -> ConsoleUser:
    """The console user with this username and password, their failures forgotten and the sign-in audited.

    TooManyAttempts after repeated failures for the username, or from the address unless `known_browser` (the
    browser has signed in as this username before: many failures by others behind one address never lock the site's
    staff out); SignInRefused for a wrong username or password (the failure is committed). The caller starts the
    browser session and commits.
    """
    _begin(session, Surface.CONSOLE, username, address, count_address=not known_browser)
    user = authenticate(session, username, password)
    if user is None:
        raise SignInRefused("The username or the password is wrong.")
    login_throttle.clear(session, Surface.CONSOLE, username)
    audit.record(session, Actor.of(user), "user.login", "console_user", user.id)
    return user


def _start(
    session: DbSession,
    key: str,
    account: ResidentAccount,
    access_key: bytes,
    policy: TokenPolicy,
    *,
    device: str,
    how: str,
) -> IssuedTokens:
    """Forget the login's failures and start a session for the device."""
    login_throttle.clear(session, Surface.APP, key)
    return app_sessions.start_session(session, access_key, account, policy, device=device, how=how)


def app_password_sign_in(
    session: DbSession,
    login: str,
    password: str,
    address: str,
    *,
    access_key: bytes,
    policy: TokenPolicy,
    device: str,
) -> IssuedTokens:
    """Sign a phone in with a username or phone number and password; the caller commits and answers the tokens.

    TooManyAttempts after repeated failures; SignInRefused for any wrong login or password (the failure is
    committed).
    """
    key = _app_key(session, login)
    _begin(session, Surface.APP, key, address)
    account = app_accounts.authenticate(session, login, password)
    if account is None:
        raise SignInRefused("The login or the password is wrong.")
    return _start(session, key, account, access_key, policy, device=device, how="password")


def app_code_sign_in(
    session: DbSession,
    login: str,
    code: str,
    address: str,
    *,
    access_key: bytes,
    code_key: bytes,
    policy: TokenPolicy,
    device: str,
) -> IssuedTokens:
    """Sign a phone in with the one-time code sent to it; the caller commits and answers the tokens.

    TooManyAttempts after repeated failures; SignInRefused (code bad_code) for a wrong, expired or used code (the
    failure, and the wrong try against the code, are committed).
    """
    key = _app_key(session, login)
    _begin(session, Surface.APP, key, address)
    account = login_codes.check_code(session, code_key, login, code)
    if account is None:
        # The wrong try against the code must count although the caller rolls the request back.
        session.commit()
        raise SignInRefused("This code is wrong, expired or already used; ask for a new one.", code="bad_code")
    return _start(session, key, account, access_key, policy, device=device, how="code")


def change_app_password(
    session: DbSession,
    account: ResidentAccount,
    current: str | None,
    new: str,
    address: str,
    *,
    keep_session: int | None,
) -> int:
    """Set or change an app account's password, a wrong current password counting as a failed attempt.

    Returns how many of the account's other sessions ended. TooManyAttempts after repeated failures;
    RuleViolation wrong_password (the failure is committed) or for a weak new password.
    """
    key = _account_key(account)
    attempt = _begin(session, Surface.APP, key, address)
    try:
        ended = app_accounts.set_password(session, account, current, new, keep_session=keep_session)
    except RuleViolation as exc:
        if exc.code != "wrong_password":
            # A weak new password guessed nothing: it does not count.
            login_throttle.withdraw(session, attempt)
            session.commit()
        raise
    login_throttle.clear(session, Surface.APP, key)
    return ended
