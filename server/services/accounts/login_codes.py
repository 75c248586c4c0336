"""One-time sign-in codes sent to a resident's phone through a pluggable sender (SMS gateway, spool, plugin).

A code is 6 digits, lives 5 minutes, allows 5 tries and is kept only as a keyed hash; at most 3 codes go to one
account per 15 minutes. The API does not send from the request: it queues the ask (`code_queue`), so the answer
and its timing are the same whether or not the phone or username has an account, and a deliverer calls
`prepare_code`, the sender, then `confirm_code` or `discard_code`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, select

from server.models import LoginCode, ResidentAccount, utcnow
from server.services.accounts.app_accounts import find_account, may_sign_in
from server.services.session import DbSession

log = logging.getLogger(__name__)

DIGITS = 6
TTL = timedelta(minutes=5)
MAX_TRIES = 5
SEND_WINDOW = timedelta(minutes=15)
MAX_SENDS = 3


class CodeSenderError(Exception):
    """The sender could not deliver the code (gateway down, program failed); the message says why, without the code."""


@dataclass(frozen=True)
class CodeMessage:
    """What a sender delivers: to which phone, the code, and the site it is for."""

    phone: str
    code: str
    site_name: str
    valid_minutes: int

    def text(self) -> str:
        """The SMS text (English and Chinese)."""
        return (
            f"{self.code} is your Gatehouse sign-in code for {self.site_name}, valid {self.valid_minutes} minutes. "
            f"Never share it. / {self.code} 是您在{self.site_name}的 Gatehouse 登录验证码,"
            f"{self.valid_minutes} 分钟内有效,请勿告诉他人。"
        )


class CodeSender(Protocol):
    """Delivers sign-in codes to phones; implementations live in mobile_api.code_senders."""

    def send(self, message: CodeMessage) -> None:
        """Deliver one code or raise CodeSenderError."""


def code_key(session_secret: bytes) -> bytes:
    """The HMAC key for stored sign-in codes, derived from the server's session secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse login code v1").derive(session_secret)


def _digest(key: bytes, account_id: int, code: str) -> str:
    return hmac.new(key, f"{account_id}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PreparedCode:
    """A code saved (as its hash) for an account and the message that carries it, not yet sent."""

    code_id: int
    account_id: int
    message: CodeMessage


def prepare_code(session: DbSession, key: bytes, login: str, at: datetime | None = None) -> PreparedCode | None:
    """Save a fresh code for the account `login` names, within its limits; None when no code may go out."""
    at = at or utcnow()
    account = find_account(session, login)
    if account is None or not may_sign_in(account) or account.phone_key is None or account.person.phone is None:
        return None
    # Two deliverers preparing codes for one account count one after the other (PostgreSQL; SQLite has one writer).
    session.execute(select(ResidentAccount.id).where(ResidentAccount.id == account.id).with_for_update())
    session.execute(
        delete(LoginCode).where(LoginCode.account_id == account.id, LoginCode.expires_at <= at - SEND_WINDOW)
    )
    recent = session.scalar(
        select(func.count()).where(LoginCode.account_id == account.id, LoginCode.created_at > at - SEND_WINDOW)
    )
    if (recent or 0) >= MAX_SENDS:
        log.info("sign-in code for account %d not sent: %d sent within the window", account.id, recent)
        return None
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    row = LoginCode(account_id=account.id, code_hash=_digest(key, account.id, code), created_at=at, expires_at=at + TTL)
    session.add(row)
    session.flush()
    message = CodeMessage(account.phone_key, code, account.person.site.name, int(TTL.total_seconds() // 60))
    return PreparedCode(row.id, account.id, message)


def confirm_code(session: DbSession, prepared: PreparedCode, at: datetime | None = None) -> None:
    """The code went out: earlier codes of the account stop working."""
    at = at or utcnow()
    for older in session.scalars(
        select(LoginCode).where(
            LoginCode.account_id == prepared.account_id, LoginCode.used_at.is_(None), LoginCode.id < prepared.code_id
        )
    ):
        older.used_at = at
    log.info("sign-in code sent for account %d", prepared.account_id)


def discard_code(session: DbSession, prepared: PreparedCode) -> None:
    """The code did not go out: forget it, so it neither works nor counts against the account's limit."""
    session.execute(delete(LoginCode).where(LoginCode.id == prepared.code_id))


def request_code(session: DbSession, key: bytes, sender: CodeSender, login: str, at: datetime | None = None) -> bool:
    """Send a fresh code to the phone of the account `login` names; False when nothing was sent (told to nobody).

    This sends within the caller's transaction and time; the API never calls it from a request (its answer
    would take longer for a login with an account): it queues the ask with `code_queue.enqueue`.
    """
    prepared = prepare_code(session, key, login, at)
    if prepared is None:
        return False
    try:
        sender.send(prepared.message)
    except CodeSenderError:
        discard_code(session, prepared)
        raise
    confirm_code(session, prepared, at)
    return True


def check_code(
    session: DbSession, key: bytes, login: str, code: str, at: datetime | None = None
) -> ResidentAccount | None:
    """The account whose live code this is (the code is used up), or None; each wrong try counts."""
    at = at or utcnow()
    account = find_account(session, login)
    if account is None or not may_sign_in(account):
        return None
    pending = session.scalar(
        select(LoginCode)
        .where(LoginCode.account_id == account.id, LoginCode.used_at.is_(None), LoginCode.expires_at > at)
        .order_by(LoginCode.id.desc())
        .limit(1)
    )
    if pending is None or pending.attempts >= MAX_TRIES:
        return None
    pending.attempts += 1
    if not (len(code) == DIGITS and code.isascii() and code.isdigit()):
        return None
    if not hmac.compare_digest(pending.code_hash, _digest(key, account.id, code)):
        return None
    pending.used_at = at
    return account
