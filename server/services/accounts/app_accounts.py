"""Residents' phone-app accounts: who may sign in, by which username or phone, with which password.

A manager turns the app on for a resident (console or CLI). The resident then signs in with the phone on file
and a one-time code, or with a username and password, and may set or change the password in the app. The phone
key follows the person's record, so a manager's correction of a phone number moves the sign-in with it.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from server.models import AppSession, Person, PersonKind, PersonStatus, ResidentAccount, SessionEnd, utcnow
from server.services import audit
from server.services.accounts.users import MIN_PASSWORD_LENGTH, check_password, hash_password, needs_rehash
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.session import DbSession

MAX_PASSWORD_LENGTH = 256
_USERNAME = re.compile(r"^[a-z0-9_.-]{3,64}$")
_PHONE_CHARS = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")


def phone_key(phone: str | None) -> str | None:
    """A phone number as digits with an optional leading '+', or None if it is not a usable number."""
    if not phone:
        return None
    compact = _PHONE_CHARS.sub("", phone.strip())
    return compact if _PHONE.fullmatch(compact) else None


def resident_actor(person: Person) -> Actor:
    """The audit actor for something a resident did in the app (pseudonym, never a name)."""
    return Actor(label=f"resident:{person.pseudonym}")


def _clean_username(username: str | None) -> str | None:
    if username is None or not username.strip():
        return None
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise RuleViolation("A username has 3 to 64 lower-case letters, digits, '.', '_' or '-'.", code="bad_username")
    return name


def check_new_password(password: str) -> None:
    """Refuse passwords that are too short or absurdly long."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise RuleViolation(
            f"A password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.", code="weak_password"
        )


def account_of(session: DbSession, person: Person) -> ResidentAccount | None:
    """The person's app account, if the app was ever turned on for them."""
    return session.scalar(select(ResidentAccount).where(ResidentAccount.person_id == person.id))


def enable_account(
    session: DbSession,
    actor: Actor,
    person: Person,
    *,
    username: str | None = None,
    password: str | None = None,
) -> ResidentAccount:
    """Turn the phone app on for a resident (or back on), with an optional username and first password."""
    if person.kind is PersonKind.VISITOR:
        raise RuleViolation("Visitors get passes, not app accounts.", code="visitor")
    if person.status is not PersonStatus.ACTIVE:
        raise RuleViolation("Only people active at the site can use the app.", code="inactive")
    name = _clean_username(username)
    key = phone_key(person.phone)
    if name is None and key is None:
        raise RuleViolation(
            "Give a username, or record a phone number for this person first: the app signs in with one of them.",
            code="no_login",
        )
    account = account_of(session, person)
    if name is not None:
        taken = session.scalar(select(ResidentAccount.id).where(ResidentAccount.username == name))
        if taken is not None and (account is None or taken != account.id):
            raise Conflict("This username is taken; choose another.", code="username_taken")
    if key is not None:
        taken = session.scalar(select(ResidentAccount.id).where(ResidentAccount.phone_key == key))
        if taken is not None and (account is None or taken != account.id):
            if name is None:
                raise Conflict(
                    "Another app account signs in with this phone number; give this person a username.",
                    code="phone_taken",
                )
            key = None  # sign-in by username only
    if password is not None:
        check_new_password(password)
    if account is None:
        account = ResidentAccount(person=person, person_id=person.id)
        session.add(account)
    account.enabled = True
    account.phone_key = key
    if name is not None:
        account.username = name
    if password is not None:
        account.password_hash = hash_password(password)
        account.password_changed_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "app_account.enable",
        "person",
        person.id,
        site_id=person.site_id,
        details={"username": account.username is not None, "phone": account.phone_key is not None},
    )
    return account


def disable_account(session: DbSession, actor: Actor, person: Person) -> int:
    """Turn the app off for a person and sign every device out; returns how many sessions ended."""
    account = account_of(session, person)
    if account is None:
        raise NotFound("This person has no app account.", code="no_account")
    account.enabled = False
    ended = end_sessions(session, account, SessionEnd.DISABLED)
    audit.record(
        session, actor, "app_account.disable", "person", person.id, site_id=person.site_id, details={"ended": ended}
    )
    return ended


def sync_phone(session: DbSession, person: Person) -> None:
    """Keep the account's phone sign-in in step after the person's phone changed (dropped if it clashes)."""
    account = account_of(session, person)
    if account is None:
        return
    key = phone_key(person.phone)
    if key is not None:
        taken = session.scalar(
            select(ResidentAccount.id).where(ResidentAccount.phone_key == key, ResidentAccount.id != account.id)
        )
        if taken is not None:
            key = None
    account.phone_key = key


def find_account(session: DbSession, login: str) -> ResidentAccount | None:
    """The account a sign-in name refers to: a username, or a phone number as the person's record has it."""
    text = login.strip()
    if not text or len(text) > 64:
        return None
    key = phone_key(text)
    if key is not None:
        found = session.scalar(select(ResidentAccount).where(ResidentAccount.phone_key == key))
        if found is not None:
            return found
    return session.scalar(select(ResidentAccount).where(func.lower(ResidentAccount.username) == text.lower()))


def may_sign_in(account: ResidentAccount | None) -> bool:
    """Whether an account may sign in now: enabled, and its person active at the site."""
    return account is not None and account.enabled and account.person.status is PersonStatus.ACTIVE


def authenticate(session: DbSession, login: str, password: str) -> ResidentAccount | None:
    """The account for this username or phone and password, or None (same time for unknown accounts)."""
    account = find_account(session, login)
    if not check_password(account.password_hash if account else None, password[:MAX_PASSWORD_LENGTH]):
        return None
    if account is None or not may_sign_in(account):
        return None
    if account.password_hash and needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def set_password(
    session: DbSession, account: ResidentAccount, current: str | None, new: str, *, keep_session: int | None
) -> int:
    """Set or change the app password; other devices are signed out. Returns how many sessions ended.

    An account that has a password must give it (`current`); the first password needs only the signed-in session.
    """
    if account.password_hash is not None and not check_password(account.password_hash, current or ""):
        raise RuleViolation("The current password is wrong.", code="wrong_password")
    check_new_password(new)
    account.password_hash = hash_password(new)
    account.password_changed_at = utcnow()
    ended = end_sessions(session, account, SessionEnd.PASSWORD_CHANGED, keep=keep_session)
    audit.record(
        session,
        resident_actor(account.person),
        "app_account.password",
        "person",
        account.person_id,
        site_id=account.person.site_id,
        details={"sessions_ended": ended},
    )
    return ended


def end_sessions(session: DbSession, account: ResidentAccount, reason: SessionEnd, *, keep: int | None = None) -> int:
    """End every live session of an account (but `keep`); returns how many."""
    now = utcnow()
    live = session.scalars(
        select(AppSession).where(AppSession.account_id == account.id, AppSession.revoked_at.is_(None))
    ).all()
    ended = 0
    for app_session in live:
        if app_session.id == keep:
            continue
        app_session.revoked_at = now
        app_session.revoked_reason = reason
        ended += 1
    return ended


def sign_out_everywhere(session: DbSession, actor: Actor, person: Person) -> int:
    """A manager signs every device of the person's app out (a lost phone); returns how many sessions ended."""
    account = account_of(session, person)
    if account is None:
        raise NotFound("This person has no app account.", code="no_account")
    ended = end_sessions(session, account, SessionEnd.MANAGER)
    audit.record(
        session,
        actor,
        "app_account.sign_out_everywhere",
        "person",
        person.id,
        site_id=person.site_id,
        details={"ended": ended},
    )
    return ended
