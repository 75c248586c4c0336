"""The queue between asking for a sign-in code and sending it, so the answer never tells who has an account.

The request only seals the login and adds a row, whatever the login names; a deliverer (the mobile API's
background thread) takes due rows one at a time, looks the account up, applies the per-account limits, makes the
code and calls the sender outside any transaction, so a slow SMS gateway holds no lock. A row is claimed by
raising its try count where it still has the count the deliverer read (PostgreSQL also skips rows another
deliverer has locked), and leased until the send has had time to finish: after a crash the lease runs out and
another try takes it. A failing sender is tried again with back-off, a bounded number of times. Rows that are
done lose their login; retention deletes them.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import CursorResult, select, update

from gatehouse_core.sealed import SealError, seal, unseal
from server.models import utcnow
from server.models.mobile import CodeRequestState, LoginCodeRequest
from server.services.accounts import login_codes
from server.services.accounts.login_codes import CodeSender, CodeSenderError
from server.services.session import DbSession

log = logging.getLogger(__name__)

# Sends of one code before it is given up.
MAX_TRIES = 5
# Wait before try n+1 is FIRST_BACKOFF * 3**(n-1): 5 s, 15 s, 45 s, 2 min 15 s.
FIRST_BACKOFF = timedelta(seconds=5)
# A claimed try may take this long (the command sender's timeout is at most a minute) before another may take over.
LEASE = timedelta(minutes=2)
# A code that could not go out within this long after it was asked for is of no use any more.
GIVE_UP_AFTER = timedelta(minutes=15)

_SEAL_CONTEXT = "login code request v1"


def queue_key(session_secret: bytes) -> bytes:
    """The AES key sealing queued logins, derived from the server's session secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse login code queue v1").derive(
        session_secret
    )


def enqueue(session: DbSession, key: bytes, login: str, at: datetime | None = None) -> None:
    """Queue an ask for a code for `login` (whatever it names: the same work either way); the caller commits."""
    at = at or utcnow()
    sealed = seal(key, login.strip().encode(), _SEAL_CONTEXT)
    session.add(LoginCodeRequest(login_sealed=sealed, requested_at=at, next_try_at=at))


class Outcome(enum.StrEnum):
    """What one delivery try came to."""

    SENT = "sent"
    DROPPED = "dropped"
    RETRY = "retry"
    FAILED = "failed"
    EXPIRED = "expired"
    TAKEN = "taken"  # another deliverer claimed the row first


@dataclass(frozen=True)
class Delivery:
    """The row a try was about and how it went."""

    request_id: int
    outcome: Outcome


def _due(session: DbSession, at: datetime) -> LoginCodeRequest | None:
    return session.scalar(
        select(LoginCodeRequest)
        .where(LoginCodeRequest.state == CodeRequestState.PENDING, LoginCodeRequest.next_try_at <= at)
        .order_by(LoginCodeRequest.next_try_at, LoginCodeRequest.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _claim(session: DbSession, row: LoginCodeRequest, at: datetime) -> bool:
    """Take the next try of `row`, unless another deliverer took it since it was read."""
    seen = row.attempts
    result = session.execute(
        update(LoginCodeRequest)
        .where(
            LoginCodeRequest.id == row.id,
            LoginCodeRequest.state == CodeRequestState.PENDING,
            LoginCodeRequest.attempts == seen,
        )
        .values(attempts=seen + 1, next_try_at=at + LEASE)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], result).rowcount != 1:
        return False
    session.refresh(row)
    return True


def _finish(row: LoginCodeRequest, state: CodeRequestState, at: datetime) -> None:
    row.state = state
    row.finished_at = at
    row.login_sealed = None


def deliver_next(
    session: DbSession, key: bytes, code_key: bytes, sender: CodeSender, at: datetime | None = None
) -> Delivery | None:
    """Deliver the next due request, committing as it goes; None when nothing is due.

    The code is saved and committed before the sender runs (outside any transaction), and kept only if the
    sender succeeds.
    """
    at = at or utcnow()
    row = _due(session, at)
    if row is None:
        session.rollback()
        return None
    request_id = row.id
    if not _claim(session, row, at):
        session.rollback()
        return Delivery(request_id, Outcome.TAKEN)
    if row.attempts > MAX_TRIES:
        # Every try was claimed and none came back (the process stopped while sending each time).
        _finish(row, CodeRequestState.FAILED, at)
        session.commit()
        log.warning("sign-in code request %d given up after %d unfinished tries", request_id, MAX_TRIES)
        return Delivery(request_id, Outcome.FAILED)
    if row.requested_at <= at - GIVE_UP_AFTER:
        _finish(row, CodeRequestState.EXPIRED, at)
        session.commit()
        log.warning("sign-in code request %d given up: not delivered within %s", request_id, GIVE_UP_AFTER)
        return Delivery(request_id, Outcome.EXPIRED)
    try:
        login = unseal(key, row.login_sealed or b"", _SEAL_CONTEXT).decode()
    except (SealError, UnicodeDecodeError):
        _finish(row, CodeRequestState.DROPPED, at)
        session.commit()
        log.warning("sign-in code request %d dropped: its login does not unseal under this key", request_id)
        return Delivery(request_id, Outcome.DROPPED)
    prepared = login_codes.prepare_code(session, code_key, login, at)
    if prepared is None:
        _finish(row, CodeRequestState.DROPPED, at)
        session.commit()
        return Delivery(request_id, Outcome.DROPPED)
    tries = row.attempts
    # The code exists before the text does (the resident may type it at once), and no lock is held while sending.
    session.commit()
    started = time.monotonic()
    why = None
    try:
        sender.send(prepared.message)
    except CodeSenderError as exc:
        why = str(exc)
    except Exception as exc:  # a plugin's bug is a failed try too, not a lost request
        # Only the kind: a plugin's own message may hold the phone number.
        why = f"the sender raised {type(exc).__name__}"
    if why is not None:
        # Back-off counts from when the try ended (a timed-out program may have taken a while).
        ended = at + timedelta(seconds=time.monotonic() - started)
        return _failed(session, request_id, prepared, tries, why, ended)
    done = at + timedelta(seconds=time.monotonic() - started)
    login_codes.confirm_code(session, prepared, done)
    row = session.get_one(LoginCodeRequest, request_id)
    _finish(row, CodeRequestState.SENT, done)
    session.commit()
    return Delivery(request_id, Outcome.SENT)


def _failed(
    session: DbSession, request_id: int, prepared: login_codes.PreparedCode, tries: int, why: str, now: datetime
) -> Delivery:
    """Forget the unsent code; try again later, or give up after MAX_TRIES."""
    login_codes.discard_code(session, prepared)
    row = session.get_one(LoginCodeRequest, request_id)
    if tries >= MAX_TRIES:
        _finish(row, CodeRequestState.FAILED, now)
        session.commit()
        log.warning("a sign-in code could not be sent (request %d, try %d, giving up): %s", request_id, tries, why)
        return Delivery(request_id, Outcome.FAILED)
    backoff = FIRST_BACKOFF * 3 ** (tries - 1)
    row.next_try_at = now + backoff
    session.commit()
    log.warning(
        "a sign-in code could not be sent (request %d, try %d of %d, next in %d s): %s",
        request_id,
        tries,
        MAX_TRIES,
        backoff.total_seconds(),
        why,
    )
    return Delivery(request_id, Outcome.RETRY)


def next_due(session: DbSession) -> datetime | None:
    """When the earliest pending request falls due (a back-off or lease ending), or None when none is pending."""
    due = session.scalar(
        select(LoginCodeRequest.next_try_at)
        .where(LoginCodeRequest.state == CodeRequestState.PENDING)
        .order_by(LoginCodeRequest.next_try_at)
        .limit(1)
    )
    session.rollback()
    return due
