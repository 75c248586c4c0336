"""The audit log in words, in both languages: every audited action has a label, details read as sentences' parts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.console import audit_words
from server.extensions import db
from server.models import AuditEntry, ConsoleRole
from tests.conftest import login

ROOT = Path(__file__).resolve().parents[3]
# audit.record(session, actor, "area.verb", ...) across the server and the phone-app API.
_RECORDED = re.compile(r"record\(\s*\w+,\s*[\w.()]+,\s*(?:\"[a-z_.]+\" if \w+ else )?\"([a-z_]+\.[a-z_]+)\"")


def audited_actions() -> set[str]:
    found: set[str] = set()
    for folder in ("server", "mobile_api"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            found.update(re.findall(_RECORDED, text))
    return found


def test_every_audited_action_has_a_label():
    actions = audited_actions()
    assert len(actions) > 30  # the pattern still finds the calls
    assert actions <= set(audit_words.ACTION_LABELS), sorted(actions - set(audit_words.ACTION_LABELS))


@pytest.fixture
def admin(client, make_user):
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    at = datetime(2025, 4, 1, 4, 5, tzinfo=UTC)
    db.session.add(AuditEntry(actor_label="admin1", action="user.login", target_type="console_user", at=at))
    db.session.add(
        AuditEntry(
            actor_label="admin1",
            action="app_account.enable",
            target_type="person",
            target_id="4",
            at=at,
            details={"phone": True, "username": False, "ended": {"from": 1, "to": 2}},
        )
    )
    db.session.commit()
    return client


def test_actions_and_details_in_english(admin):
    page = admin.get("/audit").text
    # The code stays in attributes (data-action, the filter's option values), never in what is read.
    assert "Signed in to the console" in page and "user.login" not in re.sub(r'(data-action|value)="[^"]*"', "", page)
    assert "Phone number: yes" in page and "User name: no" in page and "Sessions ended: 1 → 2" in page
    assert "phone=True" not in page


def test_actions_and_details_in_chinese(admin, make_user):
    from server.models import ConsoleUser

    user = db.session.query(ConsoleUser).filter_by(username="admin1").one()
    user.language = "zh_CN"
    db.session.commit()
    page = admin.get("/audit").text
    assert "登录控制台" in page and "手机号码\uff1a是" in page and "用户名\uff1a否" in page
    assert "phone=True" not in page and ">user.login<" not in page


def test_time_is_shown_in_the_first_sites_zone(admin, make_site):
    make_site("north", timezone="Asia/Shanghai")
    page = admin.get("/audit").text
    # 04:05 UTC is 12:05 in Shanghai; the zone is named, never "CST" nor bare "UTC".
    assert "2025-04-01 12:05:00 (Asia/Shanghai, UTC+8)" in page
    assert "Time (UTC)" not in page and "CST" not in page


def test_an_unknown_action_is_shown_as_recorded():
    assert audit_words.action_label("new.thing") == "new.thing"
