"""Console dashboard: terminals online and offline, sync lag, pending deletions, alarms, entries today by method."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.extensions import db
from server.models import (
    AlarmKind,
    ConsoleRole,
    ErasureConfirmation,
    ErasureReason,
    ErasureReceipt,
    TerminalStatus,
    utcnow,
)
from server.services.access import sites
from server.services.privacy import alarms
from server.services.reports import dashboard as service
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, login
from tests.server.console.test_events import add_events, make_site, make_terminal


def local_midnight(timezone: str) -> datetime:
    """Today's midnight in `timezone`, as UTC."""
    zone = ZoneInfo(timezone)
    today = utcnow().astimezone(zone).date()
    return datetime.combine(today, time(), tzinfo=zone).astimezone(UTC)


def receipt(site, template_id, erased_at, lines):
    """An erasure receipt with one confirmation line per (terminal, confirmed?)."""
    made = ErasureReceipt(
        site_id=site.id,
        person_pseudonym=f"p-{template_id:014d}",
        template_id=template_id,
        model_id="test-model",
        reason=ErasureReason.CONSENT_WITHDRAWN,
        journal_seq=site.journal_seq,
        erased_on_server_at=erased_at,
        confirmations=[
            ErasureConfirmation(terminal_id=t.id, confirmed_at=erased_at if done else None) for t, done in lines
        ],
    )
    db.session.add(made)
    return made


@pytest.fixture
def seeded(app):
    """Two sites in different time zones, three terminals in every state, deletions, an alarm and entries."""
    now = utcnow()
    east = make_site("east", "East Garden", timezone="Asia/Shanghai")
    west = make_site("west", "West Yard", timezone="America/Los_Angeles")
    gate = sites.save_door(db.session, TEST_ACTOR, east, "Gate", sites.DoorMethods())
    lobby = sites.save_door(db.session, TEST_ACTOR, west, "Lobby", sites.DoorMethods())
    sites.save_door(db.session, TEST_ACTOR, west, "Garage", sites.DoorMethods())
    online = make_terminal(east, "Gate terminal", [gate])
    offline = make_terminal(west, "Lobby terminal", [lobby])
    never = make_terminal(east, "Spare terminal", [gate])
    db.session.commit()
    terminals.record_status(db.session, "east", online.ident, online=True)
    terminals.record_status(db.session, "west", offline.ident, online=False, at=now - timedelta(hours=3))
    east.journal_seq += 4  # four more changes at East Garden than the door creation
    online.applied_seq = east.journal_seq  # up to date
    never.applied_seq = 0
    offline.applied_seq = max(0, west.journal_seq - 1)
    # One deletion waiting on two terminals (fresh), one waiting long past the site's deadline.
    receipt(east, 1, now - timedelta(hours=1), [(online, True), (never, False)])
    receipt(west, 2, now - timedelta(hours=west.erasure_alarm_hours + 5), [(offline, False)])
    receipt(east, 3, now - timedelta(days=9), [(online, True)])
    alarms.raise_once(
        db.session, AlarmKind.ERASURE_OVERDUE, west.id, "2", "Lobby terminal has not confirmed a deletion"
    )
    db.session.commit()

    east_start, west_start = local_midnight(east.timezone), local_midnight(west.timezone)
    add_events(
        # Today at each site, in its own time zone.
        {"site": east, "door": gate, "terminal": online, "at": east_start + timedelta(seconds=1)},
        {"site": east, "door": gate, "terminal": online, "at": east_start + timedelta(seconds=2)},
        {"site": east, "door": gate, "terminal": online, "method": EntryMethod.FACE, "at": east_start},
        {"site": west, "door": lobby, "terminal": offline, "method": EntryMethod.APP_CODE, "at": west_start},
        # Refused entries do not count.
        {"site": east, "door": gate, "terminal": online, "decision": Decision.DENY, "at": east_start},
        # Yesterday, one second before each site's midnight.
        {"site": east, "door": gate, "terminal": online, "at": east_start - timedelta(seconds=1)},
        {"site": west, "door": lobby, "terminal": offline, "at": west_start - timedelta(seconds=1)},
    )
    return {"east": east, "west": west, "online": online, "offline": offline, "never": never}


def test_dashboard_figures(seeded):
    east = seeded["east"]
    figures = service.dashboard(db.session)
    assert (figures.sites, figures.doors) == (2, 3)
    assert (figures.online, figures.offline, figures.unknown) == (1, 1, 1)
    assert [line.terminal.name for line in figures.not_online] == ["Spare terminal", "Lobby terminal"]
    assert figures.max_lag == east.journal_seq
    assert [(line.terminal.name, line.lag) for line in figures.lagging] == [
        ("Spare terminal", east.journal_seq),
        ("Lobby terminal", 1),
    ]
    assert east.journal_seq > 1
    assert (figures.pending_deletions, figures.overdue_deletions) == (2, 1)
    assert figures.alarm_count == 1 and "Lobby terminal" in figures.alarms[0].message
    today = dict(figures.entries_today)
    assert today == {
        EntryMethod.FACE: 1,
        EntryMethod.CARD: 2,
        EntryMethod.ID_DOCUMENT: 0,
        EntryMethod.APP_CODE: 1,
        EntryMethod.VISITOR_CODE: 0,
        EntryMethod.VISITOR_QR: 0,
        EntryMethod.REMOTE: 0,
    }
    assert figures.entries_total == 4


def test_day_bounds_follow_the_site_time_zone():
    at = datetime(2025, 3, 10, 17, 30, tzinfo=UTC)  # 01:30 on the 11th in Shanghai
    start, end = service.day_bounds("Asia/Shanghai", at)
    assert start == datetime(2025, 3, 10, 16, tzinfo=UTC) and end == datetime(2025, 3, 11, 16, tzinfo=UTC)


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}"><span class="n[^"]*">(\d+)</span>', html)
    assert match, f"no figure {name}"
    return match.group(1)


@pytest.mark.parametrize("role", [ConsoleRole.ADMIN, ConsoleRole.MANAGER, ConsoleRole.GUARD])
def test_dashboard_page(client, make_user, seeded, role):
    make_user("someone", role)
    login(client, "someone")
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert figure(html, "online") == "1" and figure(html, "offline") == "2"
    assert figure(html, "lag") == str(seeded["east"].journal_seq)
    assert figure(html, "pending-deletions") == "2" and 'data-figure="overdue-deletions">1 overdue' in html
    assert figure(html, "alarms") == "1" and "Lobby terminal has not confirmed a deletion" in html
    not_online = re.search(r'data-list="not-online">(.*?)</ul>', html, re.S).group(1)
    assert "Lobby terminal" in not_online and "Spare terminal" in not_online and "Gate terminal" not in not_online
    assert "Never seen" in not_online and "last seen" in not_online
    # Entries today: an SVG with a summary for screen readers, and the same numbers as a table.
    svg = re.search(r"<svg[^>]*>", html).group(0)
    assert 'role="img"' in svg and "Card 2" in svg and "Face 1" in svg and "App code 1" in svg
    assert "style=" not in html
    assert '<tr data-method="card"><th scope="row">Card</th><td class="num">2</td></tr>' in html
    assert '<tr data-method="id_document"><th scope="row">ID document</th><td class="num">0</td></tr>' in html
    assert "each site counted in its own time zone: 4 in all" in html


def test_dashboard_of_an_empty_system(client, make_user):
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    page = client.get("/")
    assert page.status_code == 200
    assert "Every terminal is online." in page.text and "No open alarms." in page.text
    assert figure(page.text, "online") == "0"


def test_terminal_status_counts_follow_status_messages(seeded):
    terminals.record_status(db.session, "west", seeded["offline"].ident, online=True)
    db.session.commit()
    figures = service.dashboard(db.session)
    assert (figures.online, figures.offline, figures.unknown) == (2, 0, 1)
    assert seeded["offline"].status is TerminalStatus.ONLINE
