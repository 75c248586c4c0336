"""API keys: shown once, stored hashed, scoped, revocable, every step audited (both databases)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from server.extensions import db
from server.models import ApiKey, AuditEntry, Site
from server.services.errors import NotFound, RuleViolation
from server.services.integrations import api_keys
from tests.conftest import TEST_ACTOR


def _actions() -> list[str]:
    return [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_a_key_is_shown_once_and_stored_as_its_hash(app: Flask, make_site: Callable[..., Site]) -> None:
    site = make_site()
    key, full = api_keys.create(db.session, TEST_ACTOR, " Home  Assistant ", ["doors:read", "events:read"], site.id)
    db.session.commit()
    assert full.startswith(f"gh_ops_{key.prefix}_") and len(full) > 50
    assert key.key_hash == hashlib.sha256(full.encode()).hexdigest() and full not in repr(vars(key))
    assert key.name == "Home Assistant" and key.scopes == "events:read doors:read" and key.site_id == site.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "api_key.created"))
    assert entry.details == {"name": "Home Assistant", "prefix": key.prefix, "scopes": ["events:read", "doors:read"]}
    assert full not in str(entry.details)
    assert api_keys.authenticate(db.session, full) is key


@pytest.mark.parametrize(
    ("name", "scopes", "code"),
    [("", ["events:read"], "name_required"), ("x" * 121, ["events:read"], "key_name_too_long"),
     ("PMS", [], "no_scope"), ("PMS", ["events:write"], "unknown_scope")],
)  # fmt: skip
def test_invalid_keys_are_refused(app: Flask, name: str, scopes: list[str], code: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        api_keys.create(db.session, TEST_ACTOR, name, scopes)
    assert refused.value.code == code


def test_a_key_for_a_missing_site_is_refused(app: Flask) -> None:
    with pytest.raises(NotFound):
        api_keys.create(db.session, TEST_ACTOR, "PMS", ["events:read"], 999)


def test_wrong_unknown_and_revoked_keys_do_not_authenticate(app: Flask) -> None:
    key, full = api_keys.create(db.session, TEST_ACTOR, "PMS", api_keys.SCOPES)
    db.session.commit()
    tampered = full[:-1] + ("A" if full[-1] != "A" else "B")
    for presented in ("", "gh_ops_", full[:-1], tampered, "gh_ops_00000000_" + full.split("_", 3)[3], full + "x"):
        assert api_keys.authenticate(db.session, presented) is None, presented
    api_keys.revoke(db.session, TEST_ACTOR, key.id)
    api_keys.revoke(db.session, TEST_ACTOR, key.id)  # twice: one audit entry
    db.session.commit()
    assert api_keys.authenticate(db.session, full) is None
    assert _actions().count("api_key.revoked") == 1
    with pytest.raises(NotFound):
        api_keys.revoke(db.session, TEST_ACTOR, 999)


def test_use_is_stamped_and_audited_once_a_minute(app: Flask) -> None:
    key, full = api_keys.create(db.session, TEST_ACTOR, "PMS", ["alarms:read"])
    db.session.commit()
    first = key.created_at + timedelta(seconds=1)
    for seconds in (0, 10, 59):
        api_keys.authenticate(db.session, full, used_for="GET /x", now=first + timedelta(seconds=seconds))
    assert _actions().count("api_key.used") == 1 and key.last_used_at == first
    api_keys.authenticate(db.session, full, used_for="GET /y", now=first + timedelta(seconds=61))
    db.session.commit()
    assert _actions().count("api_key.used") == 2
    assert [k.id for k in api_keys.list_keys(db.session)] == [key.id]
    assert db.session.scalar(select(ApiKey)).last_used_at == first + timedelta(seconds=61)
