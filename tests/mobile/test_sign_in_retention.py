"""Retention removes ended phone-app sessions, spent sign-in codes and old asks for one, and keeps live ones."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from server.extensions import db
from server.models import AppSession, LoginCode, SessionEnd, utcnow
from server.models.mobile import CodeRequestState, LoginCodeRequest
from server.services.accounts import app_sessions, code_queue
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


def test_retention_purges_code_requests_a_day_old_whatever_became_of_them(make_household, keys):
    make_household()
    now = utcnow()
    key = code_queue.queue_key(keys.session_secret)
    for age in (timedelta(minutes=1), timedelta(days=2)):
        code_queue.enqueue(db.session, key, "resident1", at=now - age)
    db.session.add(
        LoginCodeRequest(
            requested_at=now - timedelta(days=3),
            next_try_at=now - timedelta(days=3),
            state=CodeRequestState.SENT,
            finished_at=now - timedelta(days=3),
        )
    )
    db.session.commit()

    report = retention.run_retention(db.session, Actor("test"), at=now)

    assert report.sign_ins == 2
    [left] = db.session.scalars(select(LoginCodeRequest)).all()
    assert left.requested_at == now - timedelta(minutes=1)
