"""Console events log: each filter narrows, keyset pages neither repeat nor skip, the CSV export is safe and audited."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.extensions import db
from server.models import AccessEvent, AuditEntry, ConsoleRole, Door, Site, Terminal
from server.services.access import sites
from server.services.people import people
from server.services.reports import event_log
from server.services.reports.event_log import Cursor, EventFilters
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, login

BASE = datetime(2025, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def make_site(code: str, name: str, timezone: str = "Asia/Shanghai") -> Site:
    """A site with a distinct name (the shared factory names every site alike)."""
    site = sites.create_site(db.session, TEST_ACTOR, code=code, name=name, timezone=timezone)
    db.session.flush()
    return site


def make_terminal(site: Site, name: str, doors: list[Door]) -> Terminal:
    """A provisioned terminal serving `doors`."""
    return terminals.provision_terminal(db.session, TEST_ACTOR, site, name, doors).terminal


def add_events(*events: dict[str, Any]) -> None:
    """Insert access events at once; each dict names site, at and whatever differs from a granted card entry."""
    rows = []
    for e in events:
        rows.append(
            {
                "event_uid": str(uuid.uuid4()),
                "site_id": e["site"].id,
                "terminal_id": e["terminal"].id if e.get("terminal") else None,
                "door_id": e["door"].id if e.get("door") else None,
                "person_pseudonym": e.get("pseudonym"),
                "pass_id": e.get("pass_id"),
                "method": e.get("method", EntryMethod.CARD),
                "decision": e.get("decision", Decision.GRANT),
                "reason": e.get("reason", "granted"),
                "occurred_at": e["at"],
                "received_at": e["at"],
            }
        )
    db.session.execute(insert(AccessEvent), rows)
    db.session.commit()


def event_ids(html: str) -> list[int]:
    """Ids of the events listed on a page, in order."""
    return [int(m) for m in re.findall(r'data-event="(\d+)"', html)]


def ids_where(**conditions: Any) -> list[int]:
    """Ids of stored events matching column=value conditions, newest first."""
    stmt = select(AccessEvent.id).order_by(AccessEvent.occurred_at.desc(), AccessEvent.id.desc())
    for column, value in conditions.items():
        stmt = stmt.where(getattr(AccessEvent, column) == value)
    return list(db.session.scalars(stmt))


@pytest.fixture
def world(app):
    """Two sites, their doors and terminals, two named people, and one event per combination worth filtering."""
    north = make_site("north", "North Park")
    south = make_site("south", "South Court", timezone="UTC")
    gate = sites.save_door(db.session, TEST_ACTOR, north, "Main gate", sites.DoorMethods())
    side = sites.save_door(db.session, TEST_ACTOR, north, "Side door", sites.DoorMethods())
    lobby = sites.save_door(db.session, TEST_ACTOR, south, "Lobby", sites.DoorMethods())
    t_gate = make_terminal(north, "Gate terminal", [gate, side])
    t_side = make_terminal(north, "Side terminal", [side])
    t_lobby = make_terminal(south, "Lobby terminal", [lobby])
    alice = people.create_person(db.session, TEST_ACTOR, north, full_name="Alice Wang")
    bob = people.create_person(db.session, TEST_ACTOR, south, full_name="=Bob Formula")
    db.session.commit()
    add_events(
        {"site": north, "door": gate, "terminal": t_gate, "pseudonym": alice.pseudonym, "at": BASE},
        {
            "site": north,
            "door": gate,
            "terminal": t_gate,
            "pseudonym": alice.pseudonym,
            "method": EntryMethod.FACE,
            "at": BASE + timedelta(minutes=1),
        },
        {
            "site": north,
            "door": side,
            "terminal": t_side,
            "decision": Decision.DENY,
            "reason": "outside_schedule",
            "pseudonym": alice.pseudonym,
            "at": BASE + timedelta(days=1),
        },
        {
            "site": north,
            "door": side,
            "terminal": t_gate,
            "pseudonym": "p-unknown0000000",
            "decision": Decision.DENY,
            "reason": "some_new_code",
            "at": BASE + timedelta(days=2),
        },
        {
            "site": south,
            "door": lobby,
            "terminal": t_lobby,
            "pseudonym": bob.pseudonym,
            "method": EntryMethod.APP_CODE,
            "at": BASE + timedelta(hours=2),
        },
        {
            "site": south,
            "door": lobby,
            "terminal": t_lobby,
            "method": EntryMethod.VISITOR_CODE,
            "at": BASE + timedelta(days=3),
        },
    )
    return {
        "north": north,
        "south": south,
        "gate": gate,
        "side": side,
        "lobby": lobby,
        "t_gate": t_gate,
        "t_side": t_side,
        "t_lobby": t_lobby,
        "alice": alice,
        "bob": bob,
    }


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def test_events_page_lists_newest_first_with_names_and_labels(manager, world):
    page = manager.get("/events")
    assert page.status_code == 200
    assert event_ids(page.text) == ids_where()
    assert "Alice Wang" in page.text and "=Bob Formula" in page.text
    # A reason the console knows is translated into words; an unknown one is shown as its code.
    assert "Outside the allowed hours" in page.text and "some_new_code" in page.text
    assert "Unknown person p-unknown0000000" in page.text
    assert "App code" in page.text and "Visitor code" in page.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda w: {"site": w["south"].id}, lambda w: ids_where(site_id=w["south"].id)),
        (lambda w: {"door": w["side"].id}, lambda w: ids_where(door_id=w["side"].id)),
        (lambda w: {"terminal": w["t_gate"].id}, lambda w: ids_where(terminal_id=w["t_gate"].id)),
        (lambda w: {"method": "face"}, lambda w: ids_where(method=EntryMethod.FACE)),
        (lambda w: {"decision": "deny"}, lambda w: ids_where(decision=Decision.DENY)),
        (lambda w: {"person": "alice"}, lambda w: ids_where(person_pseudonym=w["alice"].pseudonym)),
        (lambda w: {"person": w["bob"].pseudonym}, lambda w: ids_where(person_pseudonym=w["bob"].pseudonym)),
        # Dates are in the chosen site's time zone (North Park: Shanghai); "to" is inclusive.
        (
            lambda w: {"site": w["north"].id, "date_from": "2025-03-11", "date_to": "2025-03-11"},
            lambda w: ids_where(site_id=w["north"].id, reason="outside_schedule"),
        ),
        (
            lambda w: {"door": w["gate"].id, "method": "card", "person": "Wang"},
            lambda w: ids_where(door_id=w["gate"].id, method=EntryMethod.CARD),
        ),
        # A door of another site than the one chosen matches nothing.
        (lambda w: {"site": w["south"].id, "door": w["gate"].id}, lambda w: []),
        (lambda w: {"person": "nobody by that name"}, lambda w: []),
    ],
)
def test_each_filter_narrows_the_events(manager, world, query, expected):
    page = manager.get("/events", query_string=query(world))
    assert page.status_code == 200
    shown = event_ids(page.text)
    want = expected(world)
    assert shown == want
    assert len(shown) < len(ids_where()) or not want


def test_bad_filters_show_errors_and_no_events(manager, world):
    page = manager.get("/events", query_string={"method": "telepathy", "date_from": "yesterday"})
    assert page.status_code == 400
    assert event_ids(page.text) == []
    assert 'aria-invalid="true"' in page.text and 'role="alert"' in page.text
    # The user's input is kept in the form.
    assert 'value="yesterday"' in page.text
    reversed_range = manager.get("/events", query_string={"date_from": "2025-03-12", "date_to": "2025-03-10"})
    assert reversed_range.status_code == 400 and "end date is before the start date" in reversed_range.text


def test_keyset_pages_have_no_duplicates_or_gaps(manager, world):
    north, gate, t_gate = world["north"], world["gate"], world["t_gate"]
    # 120 events, many sharing a timestamp, so the id must break ties across page boundaries.
    add_events(
        *(
            {"site": north, "door": gate, "terminal": t_gate, "at": BASE + timedelta(hours=5, seconds=i // 7)}
            for i in range(120)
        )
    )
    expected = ids_where()
    seen: list[int] = []
    url: str | None = "/events"
    pages = 0
    while url:
        page = manager.get(url)
        assert page.status_code == 200
        ids = event_ids(page.text)
        assert 0 < len(ids) <= event_log.PAGE_SIZE
        seen.extend(ids)
        pages += 1
        match = re.search(r'href="([^"]+)" rel="next"', page.text)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert pages == 3
    assert seen == expected


def test_keyset_paging_keeps_the_filters(manager, world):
    north, gate, t_gate = world["north"], world["gate"], world["t_gate"]
    add_events(
        *(
            {
                "site": north,
                "door": gate,
                "terminal": t_gate,
                "method": EntryMethod.FACE if i % 2 else EntryMethod.CARD,
                "at": BASE + timedelta(minutes=10 + i),
            }
            for i in range(110)
        )
    )
    first = manager.get("/events", query_string={"method": "face"})
    match = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert match
    second = manager.get(match.group(1).replace("&amp;", "&"))
    assert event_ids(first.text) + event_ids(second.text) == ids_where(method=EntryMethod.FACE)


def test_service_merges_sites_in_time_order(app, world):
    everything = event_log.page(db.session, EventFilters(), limit=3)
    assert [r.id for r in everything.rows] == ids_where()[:3]
    rest = event_log.page(db.session, EventFilters(), before=everything.older, limit=100)
    assert [r.id for r in everything.rows + rest.rows] == ids_where()
    assert rest.older is None


def test_cursor_round_trip_and_garbage():
    cursor = Cursor(datetime(2025, 3, 10, 4, 0, 0, 123456, tzinfo=UTC), 42)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode("nonsense") is None and Cursor.decode("") is None and Cursor.decode("1.x") is None


def test_bad_cursor_shows_the_newest_page(manager, world):
    page = manager.get("/events?before=garbage")
    assert page.status_code == 200 and event_ids(page.text) == ids_where()


def test_csv_export_is_complete_escaped_and_audited(manager, world):
    response = manager.get("/events.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="gatehouse-events-\d{8}-\d{6}\.csv"', disposition)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == list(event_log.CSV_COLUMNS)
    assert len(rows) == 1 + len(ids_where())
    newest = rows[1]
    assert newest[0] == (BASE + timedelta(days=3)).isoformat() and newest[1] == "South Court"
    assert newest[4:7] == ["visitor_code", "grant", "granted"]
    bob_row = next(r for r in rows if r[8] == world["bob"].pseudonym)
    # A name that a spreadsheet would run as a formula is prefixed with a quote.
    assert bob_row[7] == "'=Bob Formula"
    alice_rows = [r for r in rows if r[7] == "Alice Wang"]
    assert len(alice_rows) == 3
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "events.export")).one()
    assert entry.actor_label == "manager1"
    assert entry.details["row_cap"] == event_log.CSV_CAP and entry.details["filters"] == {}


def test_csv_export_uses_the_filters_and_records_them(manager, world):
    south = world["south"]
    response = manager.get("/events.csv", query_string={"site": south.id, "method": "app_code"})
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2 and rows[1][4] == "app_code"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "events.export")).one()
    assert entry.details["filters"] == {"site_id": str(south.id), "method": "app_code"}
    assert entry.site_id == south.id


def test_csv_export_stops_at_the_cap_with_a_note(manager, world, monkeypatch):
    monkeypatch.setattr(event_log, "CSV_CAP", 4)
    monkeypatch.setattr(event_log, "CSV_CHUNK", 3)
    rows = list(csv.reader(io.StringIO(manager.get("/events.csv").get_data(as_text=True))))
    assert len(rows) == 1 + 4 + 1
    newest_four = event_log.page(db.session, EventFilters(), limit=4).rows
    # Times are ISO 8601 in each site's zone with its offset (issue 19), so the same moments as the events.
    assert [datetime.fromisoformat(r[0]) for r in rows[1:5]] == [e.occurred_at for e in newest_four]
    assert rows[2][0].endswith("+08:00") or rows[1][0].endswith("+08:00")
    assert "Export stopped after 4 rows" in rows[-1][0]
    ids = ids_where()
    assert len(ids) == 6
    # Exactly at the cap: no note.
    monkeypatch.setattr(event_log, "CSV_CAP", 6)
    rows = list(csv.reader(io.StringIO(manager.get("/events.csv").get_data(as_text=True))))
    assert len(rows) == 1 + 6


def test_csv_cells_are_defused():
    assert event_log._safe("=1+1") == "'=1+1"
    assert event_log._safe("+86 138") == "'+86 138"
    assert event_log._safe("-x") == "'-x"
    assert event_log._safe("@SUM(A1)") == "'@SUM(A1)"
    assert event_log._safe("Alice") == "Alice" and event_log._safe(None) == "" and event_log._safe(7) == "7"


def test_guard_sees_events_but_cannot_export(client, make_user, world):
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    page = client.get("/events")
    assert page.status_code == 200 and event_ids(page.text) == ids_where()
    assert "/events.csv" not in page.text
    assert client.get("/events.csv").status_code == 403
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "events.export")).all() == []


def test_date_filter_without_site_uses_the_first_sites_time_zone(manager, world):
    # North Park (Shanghai, the first site): 2025-03-10 local covers BASE and the events two hours after it.
    page = manager.get("/events", query_string={"date_from": "2025-03-10", "date_to": "2025-03-10"})
    assert "In Asia/Shanghai time" in page.text
    at = {r.id: r.occurred_at for r in event_log.page(db.session, EventFilters(), limit=100).rows}
    start = datetime(2025, 3, 9, 16, tzinfo=UTC)
    assert event_ids(page.text) == [i for i in ids_where() if start <= at[i] < start + timedelta(days=1)]


def test_a_name_matching_too_many_people_says_so(manager, world, monkeypatch):
    monkeypatch.setattr(event_log, "PERSON_MATCHES", 1)
    people.create_person(db.session, TEST_ACTOR, world["north"], full_name="Wang Jun")
    db.session.commit()
    page = manager.get("/events", query_string={"person": "wang"})
    assert "only the first 1 were searched" in page.text
    # The first match (Alice Wang, created first) is still searched.
    assert event_ids(page.text) == ids_where(person_pseudonym=world["alice"].pseudonym)


def test_a_door_alarm_names_the_door_sensor_not_the_console(manager):
    """A forced or held-open door is reported by the door's contact; the wire carries `remote` as its method
    for now, and the table must not say the door was opened from the console."""
    site = make_site("elm", "Elm Court")
    door = Door(site_id=site.id, name="Back gate")
    db.session.add(door)
    db.session.flush()
    now = datetime.now(UTC)
    add_events(
        {"site": site, "door": door, "method": EntryMethod.REMOTE, "decision": Decision.ALARM,
         "reason": "door_forced", "at": now},
        {"site": site, "door": door, "method": EntryMethod.REMOTE, "decision": Decision.GRANT,
         "reason": "remote_open", "at": now - timedelta(minutes=1)},
    )  # fmt: skip
    page = manager.get("/events")
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page.text, re.S)
    forced = next(row for row in rows if "Door forced open" in row)
    opened = next(row for row in rows if "remote_open" in row)
    assert "Door sensor" in forced and "Opened from the console" not in forced
    assert "Opened from the console" in opened
