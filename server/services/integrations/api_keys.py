"""Keys for the integration API: created by a manager and shown once, stored as a SHA-256 hash, scoped, revoked.

A key reads `gh_ops_<prefix>_<secret>`: the prefix is public (it finds the row and tells keys apart in the console
and the audit log), the secret is 256 random bits. A random key needs no slow hash: SHA-256 is enough, compared in
constant time.

Every use is audited, cheaply: the first request of a key in each minute writes one `api_key.used` entry (method
and path of that first request) and stamps `last_used_at`; that entry stands for every request of the key in the
minute after it, so a busy integration adds at most 1,440 audit rows a day instead of one per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from server.models import ApiKey, Site, utcnow
from server.services import audit
from server.services.audit import Actor
from server.services.errors import NotFound, RuleViolation
from server.services.session import DbSession

EVENTS_READ = "events:read"
ALARMS_READ = "alarms:read"
DOORS_READ = "doors:read"
DOORS_COMMAND = "doors:command"
SCOPES = (EVENTS_READ, ALARMS_READ, DOORS_READ, DOORS_COMMAND)

KEY_PREFIX = "gh_ops_"
PREFIX_CHARS = 8  # hex characters of the public prefix
SECRET_BYTES = 32
NAME_MAX = 120
# How often a key in steady use is stamped and audited.
USE_RECORD_INTERVAL = timedelta(minutes=1)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, de-duplicated in the canonical order; RuleViolation if none or one is unknown."""
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise RuleViolation(
            f"Unknown scope {', '.join(unknown)}; choose from {', '.join(SCOPES)}.", code="unknown_scope"
        )
    if not wanted:
        raise RuleViolation("Give the key at least one scope.", code="no_scope")
    return [scope for scope in SCOPES if scope in wanted]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise RuleViolation("Name the key after the system that will use it.", code="name_required")
    if len(name) > NAME_MAX:
        raise RuleViolation(f"Keep the name under {NAME_MAX} characters.", code="key_name_too_long")
    return name


def check_site(session: DbSession, site_id: int | None) -> Site | None:
    """The site a key or webhook is limited to (None: every site); NotFound if there is no such site."""
    if site_id is None:
        return None
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    return site


def create(
    session: DbSession, actor: Actor, name: str, scopes: Iterable[str], site_id: int | None = None
) -> tuple[ApiKey, str]:
    """A new key and its full text, which is shown this once and never stored; audited."""
    name = _check_name(name)
    chosen = check_scopes(scopes)
    check_site(session, site_id)
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    full = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=_hash(full),
        scopes=" ".join(chosen),
        site_id=site_id,
        created_by=actor.label,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor,
        "api_key.created",
        "api_key",
        key.id,
        site_id=site_id,
        details={"name": name, "prefix": prefix, "scopes": chosen},
    )
    return key, full


def list_keys(session: DbSession, *, include_revoked: bool = True) -> Sequence[ApiKey]:
    """Every key, newest first (revoked ones too unless asked not to)."""
    stmt = select(ApiKey).order_by(ApiKey.id.desc())
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt))


def revoke(session: DbSession, actor: Actor, key_id: int) -> ApiKey:
    """Revoke a key at once (its next request gets 401); audited. Revoking twice changes nothing."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("There is no such API key.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        key.revoked_by = actor.label
        audit.record(
            session,
            actor,
            "api_key.revoked",
            "api_key",
            key.id,
            site_id=key.site_id,
            details={"name": key.name, "prefix": key.prefix},
        )
    return key


def _split(presented: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not presented.startswith(KEY_PREFIX):
        return None
    rest = presented[len(KEY_PREFIX) :]
    prefix, sep, secret = rest.partition("_")
    if not sep or len(prefix) != PREFIX_CHARS or not secret:
        return None
    return prefix


def authenticate(
    session: DbSession, presented: str, *, used_for: str = "", now: datetime | None = None
) -> ApiKey | None:
    """The live key `presented` is, or None (unknown, wrong or revoked). Stamps and audits its use at most once a
    minute (in the caller's transaction)."""
    prefix = _split(presented)
    if prefix is None:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.key_hash, _hash(presented)):
        return None
    if key.revoked_at is not None:
        return None
    now = now or utcnow()
    if key.last_used_at is None or now - key.last_used_at >= USE_RECORD_INTERVAL:
        key.last_used_at = now
        audit.record(
            session,
            Actor(f"api-key:{key.prefix}"),
            "api_key.used",
            "api_key",
            key.id,
            site_id=key.site_id,
            details={"request": used_for[:200]} if used_for else {},
        )
    return key


def scopes_of(key: ApiKey) -> set[str]:
    """The key's scopes."""
    return set(key.scopes.split())
