"""Console dashboard: terminals online and offline, sync lag, pending deletions, alarms, entries today by method."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.link import event_ingest
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
from server.services.operations import alarms
from server.services.reports import alarm_board
from server.services.reports import dashboard as service
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, login
from tests.server.console.test_events import make_site, make_terminal
from tests.server.services.test_day_counts import record_events


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
    alarms.raise_alarm(
        db.session,
        AlarmKind.ERASURE_OVERDUE,
        "2",
        site_id=west.id,
        message="Lobby terminal has not confirmed a deletion",
    )
    db.session.commit()

    east_start, west_start = local_midnight(east.timezone), local_midnight(west.timezone)
    record_events(
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
    match = re.search(rf'data-figure="{name}"><span class="stat-value">(\d+)</span>', html)
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
    assert figure(html, "entries-today") == "4" and figure(html, "refusals-today") == "1"
    not_online = re.search(r'data-list="not-online">(.*?)</ul>', html, re.S).group(1)
    assert "Lobby terminal" in not_online and "Spare terminal" in not_online and "Gate terminal" not in not_online
    assert "Never seen" in not_online and "last seen" in not_online
    # Entries per day: an SVG named by its title and description, a legend in words, the table one click away.
    svg = re.search(r'<svg class="chart dash-chart"[^>]*>', html).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="entries-title entries-desc"' in svg
    desc = re.search(r'<desc id="entries-desc">(.*?)</desc>', html, re.S).group(1)
    assert "Card 4" in desc and "Face 1" in desc and "App code 1" in desc  # today and yesterday
    legend = re.search(r'<ul class="legend"[^>]*>(.*?)</ul>', html, re.S).group(1)
    assert [re.sub(r"<[^>]+>", "", item) for item in re.findall(r"<li>(.*?)</li>", legend)] == [
        "Face",
        "Card",
        "App code",
    ]
    table = re.search(r'<details class="chart-data">.*?data-table="entries-per-day".*?</details>', html, re.S)
    assert table, "the entries table sits in the chart's details"
    assert "style=" not in html
    today = re.search(r'data-list="today-methods">(.*?)</p>', html, re.S).group(1)
    assert re.findall(r'data-method="(\w+)">([^<]+)</span>', today) == [
        ("face", "Face 1"),
        ("card", "Card 2"),
        ("app_code", "App code 1"),
    ]
    # Refusals by reason in words, as a chart with its table, and the busiest door with a link to its events.
    assert re.search(r'<tr data-reason="granted"><th scope="row">Allowed</th><td class="num">1</td>', html)
    busiest = re.search(r'data-table="busiest-doors">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r"<a href=\"/events\?door=\d+\">(\w+)</a>", busiest) == ["Gate", "Lobby"]
    # Face opt-in is a privacy figure: managers see it, guards do not (they have no privacy page either).
    assert ('id="face-heading"' in html) is (role is not ConsoleRole.GUARD)
    assert ('href="/privacy' in html) is (role is not ConsoleRole.GUARD)


def test_dashboard_of_an_empty_system(client, make_user):
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    page = client.get("/")
    assert page.status_code == 200
    assert "Every terminal is online." in page.text and "No open alarms." in page.text
    assert "No entries in these days." in page.text and "No refusals in these days." in page.text
    assert figure(page.text, "online") == "0"
    assert "style=" not in page.text


def test_terminal_status_counts_follow_status_messages(seeded):
    terminals.record_status(db.session, "west", seeded["offline"].ident, online=True)
    db.session.commit()
    figures = service.dashboard(db.session)
    assert (figures.online, figures.offline, figures.unknown) == (2, 0, 1)
    assert seeded["offline"].status is TerminalStatus.ONLINE


def lockout_alarm(site, door, terminal, at, reason="brute_force"):
    """A keypad lockout as a terminal reports it (terminals/runtime.py): an event with decision alarm."""
    record = EventRecord(
        uid=str(uuid.uuid4()),
        door=door.id,
        method=EntryMethod.VISITOR_CODE,
        decision=Decision.ALARM,
        reason=reason,
        at=at,
    )
    event_ingest.ingest(db.session, [(event_ingest.sender_of(db.session, terminal), [record])])
    db.session.commit()


def test_terminal_alarms_are_open_on_the_dashboard_by_severity_and_kind(client, make_user, seeded):
    east, west = seeded["east"], seeded["west"]
    gate = seeded["online"].doors[0]
    lobby = seeded["offline"].doors[0]
    now = utcnow()
    lockout_alarm(east, gate, seeded["online"], now - timedelta(minutes=20))
    lockout_alarm(west, lobby, seeded["offline"], now - timedelta(minutes=10))
    lockout_alarm(west, lobby, seeded["offline"], now - timedelta(days=alarm_board.RECENT_DAYS + 1), "door_forced")
    board = alarm_board.alarm_board(db.session)
    assert board.total == 4  # and the erasure alarm the fixture raised
    assert [(s.value, n) for s, n in board.severities] == [("critical", 1), ("warning", 2), ("notice", 1)]
    assert board.kinds[0] == (AlarmKind.KEYPAD_LOCKOUT, 2)
    # The most severe first, however old; then the newest.
    assert [line.alarm.kind for line in board.alarms] == [
        AlarmKind.DOOR_FORCED,
        AlarmKind.KEYPAD_LOCKOUT,
        AlarmKind.KEYPAD_LOCKOUT,
        AlarmKind.ERASURE_OVERDUE,
    ]
    assert (board.alarms[0].site, board.alarms[0].door, board.alarms[0].terminal) == (
        "West Yard",
        "Lobby",
        "Lobby terminal",
    )

    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    html = client.get("/").text
    assert figure(html, "alarms") == "4"
    assert "No open alarms." not in html
    kinds = re.search(r'data-list="alarm-kinds">(.*?)</ul>', html, re.S).group(1)
    assert "Keypad locked after wrong codes" in kinds and '<span data-kind="keypad_lockout">2</span>' in kinds
    severities = re.search(r'data-list="alarm-severities">(.*?)</ul>', html, re.S).group(1)
    assert "Critical" in severities and '<span data-severity="warning">2</span>' in severities
    listed = re.search(r'data-list="alarms">(.*?)</table>', html, re.S).group(1)
    assert len(re.findall(r'data-alarm="\d+"', listed)) == 4
    assert "Gate terminal" in listed and "Lobby terminal" in listed and "Door forced open" in listed


def test_terminal_alarms_resolved_lately_are_still_listed(client, make_user, seeded):
    lobby = seeded["offline"].doors[0]
    lockout_alarm(seeded["west"], lobby, seeded["offline"], utcnow() - timedelta(hours=2))
    assert alarms.end_lockouts(db.session) == 1
    db.session.commit()
    board = alarm_board.alarm_board(db.session)
    assert board.total == 1 and board.resolved_count == 1
    assert board.resolved[0].alarm.kind is AlarmKind.KEYPAD_LOCKOUT
    # Long resolved: no longer listed.
    later = alarm_board.alarm_board(db.session, utcnow() + timedelta(days=alarm_board.RECENT_DAYS + 1))
    assert later.resolved == [] and later.resolved_count == 0

    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    html = client.get("/").text
    assert figure(html, "alarms") == "1"
    resolved = re.search(r'data-list="resolved-alarms">(.*?)</table>', html, re.S).group(1)
    assert "Keypad locked after wrong codes" in resolved and "Lobby terminal" in resolved
