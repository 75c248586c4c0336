"""Console audit log: admins only, filters by actor, action prefix, target type and dates, keyset pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, ConsoleRole
from server.services.reports import audit_log
from tests.conftest import csrf_token, login

DAY = datetime(2025, 4, 1, 12, tzinfo=UTC)


def entry(actor, action, target_type, at, **details):
    """An audit entry at a chosen time (the service always writes "now")."""
    made = AuditEntry(
        actor_label=actor, action=action, target_type=target_type, target_id="7", at=at, details=details or {}
    )
    db.session.add(made)
    return made


def shown(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-audit="(\d+)"', html)]


def expected(*conditions) -> list[int]:
    stmt = select(AuditEntry.id).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return list(db.session.scalars(stmt.where(*conditions)))


@pytest.fixture
def admin(client, make_user):
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    entry("wang.li", "terminal.open_door", "terminal", DAY, door_id=3, command="abc", reason="Parcel")
    entry("wang.li", "terminal.resync", "terminal", DAY + timedelta(minutes=1), command="def")
    entry("zhao.min", "person.create", "person", DAY - timedelta(days=2))
    entry("zhao.min", "person.move_out", "person", DAY + timedelta(days=3))
    entry("system", "retention.run", "site", DAY + timedelta(days=1), events=12)
    db.session.commit()
    return client


def test_admin_sees_entries_with_details(admin):
    page = admin.get("/audit")
    assert page.status_code == 200
    assert shown(page.text) == expected()
    # Details in words (the issue 19 wording: no more `door_id=3` codes).
    assert "Door: 3" in page.text and "Reason: Parcel" in page.text
    assert "Door opened from the console" in page.text and "terminal.open_door</" not in page.text


@pytest.mark.parametrize(
    ("query", "condition"),
    [
        ({"actor": "ZHAO"}, AuditEntry.actor_label == "zhao.min"),
        ({"action": "terminal.open_door"}, AuditEntry.action.like("terminal.open_door%")),
        ({"action": "person."}, AuditEntry.target_type == "person"),
        ({"target_type": "site"}, AuditEntry.action == "retention.run"),
        (
            {"date_from": "2025-04-01", "date_to": "2025-04-02"},
            AuditEntry.at.between(DAY - timedelta(hours=12), DAY + timedelta(days=1, hours=11)),
        ),
        ({"action": "%"}, AuditEntry.id < 0),
    ],
)
def test_filters_narrow_the_log(admin, query, condition):
    page = admin.get("/audit", query_string=query)
    assert page.status_code == 200
    want = expected(condition)
    assert shown(page.text) == want
    assert len(want) < len(expected())


def test_bad_dates_are_reported(admin):
    page = admin.get("/audit", query_string={"date_from": "2025-04-05", "date_to": "2025-04-01"})
    assert page.status_code == 400 and shown(page.text) == []
    assert "end date is before the start date" in page.text and 'aria-invalid="true"' in page.text


def test_keyset_pages_cover_the_log_once(admin):
    for i in range(130):
        entry("bulk", "bulk.write", "thing", DAY + timedelta(seconds=i // 4))
    db.session.commit()
    seen, url = [], "/audit"
    while url:
        page = admin.get(url)
        ids = shown(page.text)
        assert 0 < len(ids) <= audit_log.PAGE_SIZE
        seen.extend(ids)
        match = re.search(r'href="([^"]+)" rel="next"', page.text)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == expected()


@pytest.mark.parametrize("role", [ConsoleRole.MANAGER, ConsoleRole.GUARD])
def test_only_admins_see_the_audit_log(client, make_user, role):
    make_user("user1", role)
    login(client, "user1")
    assert client.get("/audit").status_code == 403
    assert "Audit log" not in client.get("/").text


def test_details_text_flattens_values():
    assert audit_log.details_text({"b": [1, 2], "a": {"y": None, "x": "v"}}) == [("a", "x=v, y="), ("b", "1, 2")]
    assert audit_log.details_text(None) == []


def test_the_action_filter_offers_actions_in_words_grouped_by_area(admin):
    page = admin.get("/audit").text
    select = page[page.index('<select id="action"') : page.index("</select>", page.index('<select id="action"'))]
    assert select.index('<option value="">Any action</option>') < select.index("<optgroup")
    assert (
        '<optgroup label="Credentials">' in select
        and '<option value="credential.add">Credential added</option>' in select
    )
    assert '<option value="terminal.">Terminals: every action</option>' in select
    # Every audited action can be chosen, by its words.
    from server.console.audit_words import ACTION_LABELS

    assert all(f'value="{action}"' in select for action in ACTION_LABELS)


@pytest.mark.parametrize(
    ("action", "label", "want"),
    [
        ("terminal.open_door", "Door opened from the console", AuditEntry.action == "terminal.open_door"),
        ("person.", "People: every action", AuditEntry.target_type == "person"),
        ("terminal.re", "Actions starting with “terminal.re”", AuditEntry.action == "terminal.resync"),
    ],
)
def test_old_links_with_codes_keep_working_and_show_their_choice(admin, action, label, want):
    page = admin.get("/audit", query_string={"action": action})
    assert page.status_code == 200 and shown(page.text) == expected(want)
    assert f'<option selected value="{action}">{label}</option>' in page.text
    assert "Clear filters" in page.text


def test_no_match_says_what_to_do(admin):
    page = admin.get("/audit", query_string={"actor": "nobody-at-all"})
    assert page.status_code == 200 and shown(page.text) == []
    assert "No audit entries match these filters." in page.text and "data-empty" in page.text


def test_the_action_filter_speaks_chinese(admin):
    page = admin.get("/audit")
    assert admin.post("/language", data={"csrf_token": csrf_token(page.text), "language": "zh_CN"}).status_code == 302
    page = admin.get("/audit", query_string={"action": "credential.add"}).text
    assert '<optgroup label="凭证">' in page and '<option selected value="credential.add">凭证已添加</option>' in page
    assert '<option value="terminal.">终端：全部操作</option>' in page and "任何操作" in page  # noqa: RUF001
