"""Retention removes ended phone-app sessions and spent sign-in codes, and keeps live ones."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from server.extensions import db
from server.models import AppSession, LoginCode, SessionEnd, utcnow
from server.services.accounts import app_sessions
from server.services.audit import Actor
from server.services.privacy import retention


def _session(account, key, **fields):
    issued = app_sessions.start_session(db.session, key, account, app_sessions.TokenPolicy(), how="test")
    for name, value in fields.items():
        setattr(issued.session, name, value)
    db.session.commit()
    return issued.session.id


def test_retention_purges_old_sessions_and_codes_only(make_household, keys):
    home = make_household()
    key = app_sessions.access_key(keys.session_secret)
    now = utcnow()
    live = _session(home.account, key)
    recently_ended = _session(home.account, key, revoked_at=now - timedelta(days=2), revoked_reason=SessionEnd.LOGOUT)
    long_ended = _session(home.account, key, revoked_at=now - timedelta(days=40), revoked_reason=SessionEnd.LOGOUT)
    long_expired = _session(home.account, key, refresh_expires_at=now - timedelta(days=31))
    for age in (timedelta(minutes=1), timedelta(days=2)):
        db.session.add(
            LoginCode(account_id=home.account.id, code_hash="0" * 64, created_at=now - age, expires_at=now - age)
        )
    db.session.commit()

    report = retention.run_retention(db.session, Actor("test"), at=now)

    assert report.sign_ins == 3  # two sessions and one code
    left = set(db.session.scalars(select(AppSession.id)))
    assert {live, recently_ended} <= left
    assert not {long_ended, long_expired} & left
    assert db.session.scalar(select(func.count()).select_from(LoginCode)) == 1


def test_a_one_site_run_leaves_sign_ins_alone(make_household, keys):
    home = make_household()
    key = app_sessions.access_key(keys.session_secret)
    _session(home.account, key, revoked_at=utcnow() - timedelta(days=40), revoked_reason=SessionEnd.LOGOUT)
    report = retention.run_retention(db.session, Actor("test"), site=home.site)
    assert report.sign_ins == 0
    assert db.session.scalar(select(func.count()).select_from(AppSession)) == 2  # the household's own + this one
