"""Fixtures for the mobile API: the app on the same database as the console app, accounts and tokens."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS
from mobile_api import state as mobile_state
from mobile_api.app import create_app as create_mobile_app
from mobile_api.config import MobileApiConfig
from server.extensions import db
from server.models import Door, Person, ResidentAccount, Site
from server.services.access import access
from server.services.accounts import app_accounts, app_sessions
from tests.conftest import PASSWORD, TEST_ACTOR


def mobile_config(app: Flask, key_dir: Path, spool: Path, **overrides: Any) -> MobileApiConfig:
    """A mobile API config on the console app's database, validated like a real file."""
    data: dict[str, Any] = {
        "mode": "development",
        "database_url": app.config["SQLALCHEMY_DATABASE_URI"],
        "key_dir": str(key_dir),
        "login_codes": {"sender": "spool", "spool_dir": str(spool)},
        # Generous limits: tests of the limits themselves build an app with tight ones.
        "rate_limits": {"default": "10000/minute", "sign_in": "10000/minute", "passes": "10000/hour"},
    }
    data.update(overrides)
    return parse_config(MobileApiConfig, data)


@pytest.fixture
def code_spool(tmp_path: Path) -> Path:
    """Where the spool sender writes sign-in codes."""
    return tmp_path / "codes"


@pytest.fixture
def make_mobile_app(app: Flask, key_dir: Path, keys: ServerKeys, code_spool: Path) -> Iterator[Callable[..., Flask]]:
    """Build mobile API apps on the test database (config overrides as keyword arguments); disposed after."""
    built: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        mobile = create_mobile_app(mobile_config(app, key_dir, code_spool, **overrides), keys=keys, testing=True)
        built.append(mobile)
        return mobile

    yield make
    for mobile in built:
        with mobile.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def mobile_app(make_mobile_app: Callable[..., Flask]) -> Flask:
    """The mobile API with test settings."""
    return make_mobile_app()


@pytest.fixture
def mobile(mobile_app: Flask) -> FlaskClient:
    """A test client of the mobile API."""
    return mobile_app.test_client()


def sent_codes(spool: Path) -> list[dict[str, str]]:
    """Messages the spool sender wrote, oldest first: {"phone", "text", "code"}."""
    if not spool.exists():
        return []
    files = sorted(spool.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


def deliver_codes(mobile_app: Flask) -> None:
    """Send every queued sign-in code now, as the running API's deliverer thread does after each request."""
    with mobile_app.app_context():
        deliverer = mobile_state.mobile().deliverer
        assert deliverer is not None, "this mobile API sends no codes"
        deliverer.drain()


@pytest.fixture
def make_account(app: Flask) -> Callable[..., ResidentAccount]:
    """Turn the app on for a person (username and/or their phone, and a password unless None)."""

    def make(person: Person, username: str | None = None, password: str | None = PASSWORD) -> ResidentAccount:
        account = app_accounts.enable_account(db.session, TEST_ACTOR, person, username=username, password=password)
        db.session.commit()
        return account

    return make


@pytest.fixture
def bearer(app: Flask, keys: ServerKeys) -> Callable[[ResidentAccount], dict[str, str]]:
    """Sign an account in through the service layer; returns the Authorization header of a fresh access token."""

    def make(account: ResidentAccount) -> dict[str, str]:
        key = app_sessions.access_key(keys.session_secret)
        issued = app_sessions.start_session(db.session, key, account, app_sessions.TokenPolicy(), how="test")
        db.session.commit()
        return {"Authorization": f"Bearer {issued.access_token}"}

    return make


@dataclass
class Household:
    """A resident who may use the app, at a site with doors, plus their token."""

    site: Site
    doors: list[Door]
    person: Person
    account: ResidentAccount
    headers: dict[str, str]


@pytest.fixture
def make_household(
    make_site: Callable[..., Site],
    make_door: Callable[..., Door],
    make_person: Callable[..., Person],
    make_account: Callable[..., ResidentAccount],
    bearer: Callable[[ResidentAccount], dict[str, str]],
) -> Callable[..., Household]:
    """A resident with an app account and a token, allowed at every door of a new (or given) site."""
    counter = iter(range(1, 10_000))

    def make(site: Site | None = None, name: str = "Li Wei", phone: str | None = None, **person_kw: Any) -> Household:
        n = next(counter)
        site = site or make_site()
        doors = list(site.doors) or [make_door(site, "North gate"), make_door(site, "Garden door")]
        person = make_person(site, name, phone=phone or f"+86 138 0000 {n:04d}", unit=f"{n}-101", **person_kw)
        group = next((g for g in _groups(site) if g.name == "Residents"), None)
        if group is None:
            group = access.create_group(db.session, TEST_ACTOR, site, "Residents", doors, ALWAYS.windows)
        access.add_member(db.session, TEST_ACTOR, group, person)
        db.session.commit()
        account = make_account(person, username=f"resident{n}")
        return Household(site, doors, person, account, bearer(account))

    return make


def _groups(site: Site) -> list[Any]:
    from sqlalchemy import select

    from server.models import AccessGroup

    return list(db.session.scalars(select(AccessGroup).where(AccessGroup.site_id == site.id)))
