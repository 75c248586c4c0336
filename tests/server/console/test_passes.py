"""Console list of visitor passes: filters, pages, revoking, roles; codes never shown (both databases)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from gatehouse_core.schedule import ALWAYS
from server.extensions import db
from server.models import AuditEntry, ConsoleRole, JournalKind, PassStatus, VisitorPass
from server.services import journal
from server.services.access import access
from server.services.visitors import passes
from tests.conftest import TEST_ACTOR, csrf_token, login

ROW = re.compile(r"<td>(Visitor [^<]+)</td>")


def visitors(html: str) -> list[str]:
    """Visitor names in the table, in page order."""
    return ROW.findall(html)


@pytest.fixture
def estate(make_site, make_door, make_person, keys):
    """Two sites; at the first, hosts Alice and Bob may use doors A and B."""
    site = make_site(timezone="Asia/Shanghai")
    other = make_site(timezone="Europe/Berlin")
    a, b = make_door(site, "A"), make_door(site, "B")
    x = make_door(other, "X")
    group = access.create_group(db.session, TEST_ACTOR, site, "G", [a, b], ALWAYS.windows)
    group_x = access.create_group(db.session, TEST_ACTOR, other, "GX", [x], ALWAYS.windows)
    alice, bob = make_person(site, "Alice Host"), make_person(site, "Bob Host")
    xavier = make_person(other, "Xavier Host")
    for g, p in ((group, alice), (group, bob), (group_x, xavier)):
        access.add_member(db.session, TEST_ACTOR, g, p)
    db.session.commit()
    return {"site": site, "other": other, "a": a, "b": b, "x": x, "alice": alice, "bob": bob, "xavier": xavier}


def issue(keys, host, name, doors, start_in: timedelta, hours: int = 4, uses: int = 1):
    now = datetime.now(ZoneInfo("UTC"))
    issued = passes.issue_pass(
        db.session, TEST_ACTOR, keys, host, name, now + start_in, now + start_in + timedelta(hours=hours), doors, uses
    )
    db.session.commit()
    return issued


def login_as(client, make_user, role: ConsoleRole):
    make_user(f"{role.value}1", role)
    login(client, f"{role.value}1")
    return client


def test_list_shows_passes_in_site_time_and_never_the_code(client, make_user, estate, keys):
    issued = issue(keys, estate["alice"], "Visitor Wang", [estate["a"], estate["b"]], timedelta(days=1), uses=3)
    login_as(client, make_user, ConsoleRole.MANAGER)
    page = client.get("/passes")
    assert page.status_code == 200
    row = page.text[page.text.index("Visitor Wang") :].split("</tr>")[0]
    assert "Alice Host" in row and "A, B" in row and "0 of 3" in row and "active" in row
    if "person.show" in client.application.view_functions:
        assert f'href="/people/{estate["alice"].id}"' in row
    start = issued.visitor_pass.valid_from.astimezone(ZoneInfo("Asia/Shanghai"))
    # The zone is named with its offset, never the ambiguous "CST" (issue 19).
    assert f"{start:%Y-%m-%d %H:%M}" in row and "(Asia/Shanghai, UTC+8)" in row and "CST" not in row
    assert issued.code not in page.text
    assert issued.visitor_pass.code_hash not in page.text
    assert issued.token not in page.text


def test_filters_by_status_host_site_and_dates(client, make_user, estate, keys):
    shanghai = ZoneInfo("Asia/Shanghai")
    tomorrow = datetime.now(shanghai).date() + timedelta(days=1)
    at = datetime.combine(tomorrow, time(10), shanghai).astimezone(ZoneInfo("UTC"))
    lead = at - datetime.now(ZoneInfo("UTC"))
    issue(keys, estate["alice"], "Visitor Soon", [estate["a"]], lead)
    issue(keys, estate["bob"], "Visitor Later", [estate["b"]], lead + timedelta(days=10))
    revoked = issue(keys, estate["alice"], "Visitor Revoked", [estate["a"]], lead + timedelta(days=2))
    passes.revoke_pass(db.session, TEST_ACTOR, revoked.visitor_pass)
    issue(keys, estate["xavier"], "Visitor Abroad", [estate["x"]], lead)
    db.session.commit()
    login_as(client, make_user, ConsoleRole.GUARD)

    assert sorted(visitors(client.get("/passes").text)) == [
        "Visitor Abroad",
        "Visitor Later",
        "Visitor Revoked",
        "Visitor Soon",
    ]
    assert visitors(client.get("/passes?status=revoked").text) == ["Visitor Revoked"]
    assert sorted(visitors(client.get("/passes?status=active").text)) == [
        "Visitor Abroad",
        "Visitor Later",
        "Visitor Soon",
    ]
    assert visitors(client.get("/passes?host=bob").text) == ["Visitor Later"]
    assert visitors(client.get("/passes?host=%25").text) == []  # a wildcard is searched for literally
    site_only = visitors(client.get(f"/passes?site={estate['site'].id}").text)
    assert "Visitor Abroad" not in site_only and len(site_only) == 3
    day = tomorrow.isoformat()
    same_day = visitors(client.get(f"/passes?site={estate['site'].id}&from={day}&to={day}").text)
    assert same_day == ["Visitor Soon"]
    later = (tomorrow + timedelta(days=5)).isoformat()
    assert visitors(client.get(f"/passes?from={later}").text) == ["Visitor Later"]
    bad = client.get("/passes?from=soon&status=nope")
    assert bad.status_code == 200
    assert "Enter a date like 2026-05-01." in bad.text and "Choose one of the listed statuses." in bad.text


def test_list_is_paginated_by_fifty(client, make_user, estate, keys):
    for n in range(55):
        issue(keys, estate["alice"], f"Visitor {n:03d}", [estate["a"]], timedelta(hours=1 + n))
    login_as(client, make_user, ConsoleRole.MANAGER)
    first = client.get("/passes?status=active")
    names = visitors(first.text)
    assert len(names) == 50 and names[0] == "Visitor 054" and names[-1] == "Visitor 005"
    match = re.search(r'href="([^"]+)">Older passes', first.text)
    assert match
    second = client.get(match.group(1).replace("&amp;", "&"))
    assert "status=active" in match.group(1)
    assert visitors(second.text) == [f"Visitor {n:03d}" for n in range(4, -1, -1)]
    assert "Older passes" not in second.text and "Newest passes" in second.text


def test_manager_revokes_a_pass_and_terminals_are_told(client, make_user, estate, keys):
    issued = issue(keys, estate["alice"], "Visitor Wang", [estate["a"]], timedelta(hours=1))
    site = estate["site"]
    seq = db.session.get(type(site), site.id).journal_seq
    login_as(client, make_user, ConsoleRole.MANAGER)
    page = client.get("/passes")
    assert f'action="/passes/{issued.visitor_pass.id}/revoke"' in page.text and "data-confirm=" in page.text
    response = client.post(
        f"/passes/{issued.visitor_pass.id}/revoke",
        data=MultiDict({"csrf_token": csrf_token(page.text), "next": "/passes?status=active"}),
    )
    assert response.status_code == 302 and response.headers["Location"] == "/passes?status=active"
    db.session.expire_all()
    assert db.session.get(VisitorPass, issued.visitor_pass.id).status is PassStatus.REVOKED
    entries = [(e.kind, e.payload) for e in journal.entries_after(db.session, site.id, seq)]
    assert entries == [(JournalKind.PASS_REVOKE, {"pass": issued.visitor_pass.id})]
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pass.revoke"))
    assert audit is not None and audit.actor_label == "manager1"
    after = client.get("/passes")
    assert "is revoked" in after.text
    assert f'action="/passes/{issued.visitor_pass.id}/revoke"' not in after.text


def test_revoke_without_csrf_token_is_refused(client, make_user, estate, keys):
    issued = issue(keys, estate["alice"], "Visitor Wang", [estate["a"]], timedelta(hours=1))
    login_as(client, make_user, ConsoleRole.ADMIN)
    assert client.post(f"/passes/{issued.visitor_pass.id}/revoke").status_code == 400
    db.session.expire_all()
    assert db.session.get(VisitorPass, issued.visitor_pass.id).status is PassStatus.ACTIVE


def test_guard_sees_passes_but_cannot_revoke(client, make_user, estate, keys):
    issued = issue(keys, estate["alice"], "Visitor Wang", [estate["a"]], timedelta(hours=1))
    login_as(client, make_user, ConsoleRole.GUARD)
    page = client.get("/passes")
    assert page.status_code == 200 and "Visitor Wang" in page.text
    assert "/revoke" not in page.text
    assert f'href="/people/{estate["alice"].id}"' not in page.text  # guards do not open people pages
    response = client.post(f"/passes/{issued.visitor_pass.id}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(VisitorPass, issued.visitor_pass.id).status is PassStatus.ACTIVE
    for url in ("/doors", "/groups", "/holidays"):
        assert client.get(url).status_code == 403
