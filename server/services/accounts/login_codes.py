"""One-time sign-in codes sent to a resident's phone through a pluggable sender (SMS gateway, spool, plugin).

A code is 6 digits, lives 5 minutes, allows 5 tries and is kept only as a keyed hash. Asking for a code
answers the same whether or not the phone or username has an account, so the API does not reveal who lives
where; at most 3 codes go to one account per 15 minutes.
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


def request_code(session: DbSession, key: bytes, sender: CodeSender, login: str, at: datetime | None = None) -> bool:
    """Send a fresh code to the phone of the account `login` names; False when nothing was sent (told to nobody)."""
    at = at or utcnow()
    account = find_account(session, login)
    if account is None or not may_sign_in(account) or account.phone_key is None or account.person.phone is None:
        return False
    session.execute(
        delete(LoginCode).where(LoginCode.account_id == account.id, LoginCode.expires_at <= at - SEND_WINDOW)
    )
    recent = session.scalar(
        select(func.count()).where(LoginCode.account_id == account.id, LoginCode.created_at > at - SEND_WINDOW)
    )
    if (recent or 0) >= MAX_SENDS:
        log.info("sign-in code for account %d not sent: %d sent within the window", account.id, recent)
        return False
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    # Earlier codes stop working once a new one is asked for.
    for older in session.scalars(
        select(LoginCode).where(LoginCode.account_id == account.id, LoginCode.used_at.is_(None))
    ):
        older.used_at = at
    session.add(
        LoginCode(account_id=account.id, code_hash=_digest(key, account.id, code), created_at=at, expires_at=at + TTL)
    )
    session.flush()
    sender.send(CodeMessage(account.phone_key, code, account.person.site.name, int(TTL.total_seconds() // 60)))
    log.info("sign-in code sent for account %d", account.id)
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
