"""Console pages for doors, access groups with weekly schedules, and holidays (both databases)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from gatehouse_core.schedule import ALWAYS, Window
from gatehouse_core.wire.records import GroupRecord, PersonRecord
from server.extensions import db
from server.link import roster
from server.link.changes import changes_in
from server.models import AccessGroup, AuditEntry, ConsoleRole, Door, Holiday, JournalEntry, JournalKind
from server.services import journal
from server.services.access import access
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, csrf_token, login


def journal_count() -> int:
    return db.session.scalar(select(func.count()).select_from(JournalEntry)) or 0


def new_entries(site, after: int) -> list[tuple[JournalKind, dict]]:
    return [(e.kind, e.payload) for e in journal.entries_after(db.session, site.id, after)]


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def post(client, url: str, data: dict | list) -> object:
    """POST a form the way a browser does after loading it (with the page's CSRF token)."""
    token = csrf_token(client.get("/passes").text)
    items = list(data.items()) if isinstance(data, dict) else list(data)
    return client.post(url, data=MultiDict([*((k, str(v)) for k, v in items), ("csrf_token", token)]))


# ---- doors ----------------------------------------------------------------------------------------------------------


def test_doors_page_lists_methods_and_terminals(manager, make_site, make_door):
    site = make_site()
    north = make_door(site, "North gate", face=True)
    make_door(site, "Bike shed", card=True, id_document=False, app_code=False)
    terminals.provision_terminal(db.session, TEST_ACTOR, site, "North terminal", [north])
    db.session.commit()
    page = manager.get("/doors")
    assert page.status_code == 200
    text = page.text
    assert "North gate" in text and "North terminal" in text
    assert "Face, Card, ID document, App code" in text
    bike_row = text[text.index("Bike shed") :].split("</tr>")[0]
    assert "Card" in bike_row and "App code" not in bike_row
    assert f'href="/doors/{north.id}/edit"' in text


def test_door_is_created_from_the_form_and_journalled(manager, make_site):
    site = make_site()
    before = site.journal_seq
    form = manager.get("/doors/new")
    assert form.status_code == 200 and 'name="face"' in form.text and "must also accept" in form.text
    response = post(
        manager, "/doors/new", {"site_id": site.id, "name": "Lobby", "card": "1", "id_document": "1", "app_code": "1"}
    )
    assert response.status_code == 302
    door = db.session.scalar(select(Door).where(Door.name == "Lobby"))
    assert door is not None and door.site_id == site.id
    assert (door.accepts_face, door.accepts_card, door.accepts_id_document, door.accepts_app_code) == (
        False,
        True,
        True,
        True,
    )
    assert new_entries(site, before) == [
        (
            JournalKind.DOOR_POLICY,
            {"door": door.id, "face": False, "card": True, "id_document": True, "app_code": True},
        )
    ]


@pytest.mark.parametrize(
    ("methods", "missing"),
    [({"face": "1"}, "Card, ID document, App code"), ({"face": "1", "card": "1", "id_document": "1"}, "App code")],
)
def test_face_door_without_alternatives_is_refused_and_nothing_changes(manager, make_site, methods, missing):
    site = make_site()
    before = journal_count()
    response = post(manager, "/doors/new", {"site_id": site.id, "name": "Face only", **methods})
    assert response.status_code == 422
    assert "A door that accepts face must also accept card, ID document and app code" in response.text
    assert f"Turn on {missing}" in response.text
    assert 'id="methods-error" role="alert"' in response.text
    assert 'value="Face only"' in response.text  # the user's input is kept
    assert db.session.scalar(select(func.count()).select_from(Door)) == 0
    assert journal_count() == before


def test_door_edit_saves_policy_and_refused_edit_changes_nothing(manager, make_site, make_door):
    site = make_site()
    door = make_door(site, "Gate")
    page = manager.get(f"/doors/{door.id}/edit")
    assert page.status_code == 200 and 'value="Gate"' in page.text
    all_four = {"name": "Gate", "face": "1", "card": "1", "id_document": "1", "app_code": "1"}
    assert post(manager, f"/doors/{door.id}/edit", all_four).status_code == 302
    db.session.refresh(door)
    assert door.accepts_face
    seq = db.session.get(type(site), site.id).journal_seq

    refused = post(manager, f"/doors/{door.id}/edit", {"name": "Renamed", "face": "1", "card": "1"})
    assert refused.status_code == 422 and "Turn on ID document, App code" in refused.text
    db.session.expire_all()
    door = db.session.get(Door, door.id)
    assert door.name == "Gate"
    assert (door.accepts_face, door.accepts_card, door.accepts_id_document, door.accepts_app_code) == (
        True,
        True,
        True,
        True,
    )
    assert new_entries(site, seq) == []


def test_renaming_a_door_is_audited_but_not_journalled(manager, make_site, make_door):
    site = make_site()
    door = make_door(site, "Gate")
    seq = site.journal_seq
    form = {"name": "Main gate", "card": "1", "id_document": "1", "app_code": "1"}
    assert post(manager, f"/doors/{door.id}/edit", form).status_code == 302
    db.session.expire_all()
    assert db.session.get(Door, door.id).name == "Main gate"
    assert new_entries(site, seq) == []
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "door.rename")) is not None


def test_duplicate_door_name_is_shown_next_to_the_name(manager, make_site, make_door):
    site = make_site()
    make_door(site, "Gate")
    response = post(manager, "/doors/new", {"site_id": site.id, "name": "Gate", "card": "1"})
    assert response.status_code == 409
    assert 'id="name-error"' in response.text and "already has a door with this name" in response.text


# ---- access groups --------------------------------------------------------------------------------------------------


def schedule_form(windows: dict[tuple[int, int], tuple[str, str]]) -> list[tuple[str, str]]:
    items = []
    for (day, slot), (start, end) in windows.items():
        items += [(f"w{day}_{slot}_from", start), (f"w{day}_{slot}_to", end)]
    return items


def test_group_is_created_with_its_schedule_and_journalled(manager, make_site, make_door):
    site = make_site()
    a, b = make_door(site, "A"), make_door(site, "B")
    before = db.session.get(type(site), site.id).journal_seq
    form = manager.get(f"/groups/new?site={site.id}")
    assert form.status_code == 200
    assert "a group without any windows lets nobody in" in form.text
    # Three windows a day are offered, as 24-hour text (a browser's time input would show "12:00 AM").
    assert 'id="w6_2_to"' in form.text and 'type="time"' not in form.text
    data = [
        ("site", str(site.id)),
        ("name", "Cleaners"),
        ("door", str(a.id)),
        ("door", str(b.id)),
        *schedule_form({(0, 0): ("07:00", "09:00"), (0, 1): ("17:00", "00:00"), (5, 0): ("10:00", "12:30")}),
    ]
    response = post(manager, "/groups/new", data)
    assert response.status_code == 302
    group = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Cleaners"))
    assert group is not None
    assert not group.open_on_holidays  # the box was not ticked
    assert {d.id for d in group.doors} == {a.id, b.id}
    assert [(w.weekday, w.start_minute, w.end_minute) for w in group.windows] == [
        (0, 420, 540),
        (0, 1020, 1440),
        (5, 600, 750),
    ]
    assert new_entries(site, before) == [(JournalKind.SCHEDULE, {"group": group.id, "doors": [a.id, b.id]})]
    # What terminals get is exactly that schedule.
    data_for_terminals = roster.load_site(db.session, site)
    assert data_for_terminals.groups[group.id] == (
        frozenset({a.id, b.id}),
        ((0, 420, 540), (0, 1020, 1440), (5, 600, 750)),
        False,
    )
    page = manager.get("/groups")
    assert "Cleaners" in page.text and "17:00\u201324:00" in page.text


def test_editing_a_group_journals_what_terminals_need(manager, make_site, make_door, make_person):
    site = make_site()
    a, b = make_door(site, "A"), make_door(site, "B")
    ta = terminals.provision_terminal(db.session, TEST_ACTOR, site, "TA", [a]).terminal
    tb = terminals.provision_terminal(db.session, TEST_ACTOR, site, "TB", [b]).terminal
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [a], ALWAYS.windows)
    person = make_person(site)
    access.add_member(db.session, TEST_ACTOR, group, person)
    db.session.commit()
    before = db.session.get(type(site), site.id).journal_seq

    page = manager.get(f"/groups/{group.id}")
    assert page.status_code == 200 and 'value="00:00"' in page.text and "1 member" in page.text
    data = [
        ("name", "Residents"),
        ("door", str(a.id)),
        ("door", str(b.id)),
        ("open_on_holidays", "1"),
        *schedule_form({(d, 0): ("06:00", "23:00") for d in range(7)}),
    ]
    assert post(manager, f"/groups/{group.id}", data).status_code == 302

    entries = new_entries(site, before)
    assert (JournalKind.SCHEDULE, {"group": group.id, "doors": [a.id, b.id]}) in entries
    assert (JournalKind.DOOR_POLICY, {"door": b.id, "group": group.id}) in entries
    changes = changes_in(entries)
    scopes = {s.terminal_id: s for s in roster.scopes_of_site(db.session, site.id)}
    # The terminal at the newly added door takes a fresh roster, which now holds the member.
    assert changes.needs_snapshot(scopes[tb.id]) and not changes.needs_snapshot(scopes[ta.id])
    records = roster.full_roster(db.session, site, scopes[tb.id], roster.HashOnlySealer())
    assert any(isinstance(r, PersonRecord) and r.pseudonym == person.pseudonym for r in records)
    group_rec = next(r for r in records if isinstance(r, GroupRecord))
    assert group_rec.windows == tuple((d, 360, 1380) for d in range(7))
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "group.update")) is not None


def test_saving_an_unchanged_group_journals_nothing(manager, make_site, make_door):
    site = make_site()
    a = make_door(site, "A")
    group = access.create_group(db.session, TEST_ACTOR, site, "Morning", [a], [Window(0, 420, 540)])
    db.session.commit()
    before = db.session.get(type(site), site.id).journal_seq
    data = [("name", "Morning"), ("door", str(a.id)), ("open_on_holidays", "1")]
    data += schedule_form({(0, 0): ("07:00", "09:00")})
    assert post(manager, f"/groups/{group.id}", data).status_code == 302
    assert new_entries(site, before) == []


@pytest.mark.parametrize(
    ("windows", "field", "message"),
    [
        ({(1, 0): ("09:00", "08:00")}, "w1_0_to", "End the window after it starts"),
        ({(1, 0): ("09:00", "")}, "w1_0_to", "Give both a start and an end time"),
        ({(1, 0): ("", "10:00")}, "w1_0_from", "Give both a start and an end time"),
        ({(1, 0): ("9h", "10:00")}, "w1_0_from", "Enter a time like 07:30"),
        ({(1, 0): ("08:00", "25:00")}, "w1_0_to", "Enter a time like 17:30"),
        ({(2, 0): ("08:00", "12:00"), (2, 1): ("11:00", "13:00")}, "w2_1_from", "overlaps another one on Wednesday"),
        ({(2, 0): ("08:00", "18:00"), (2, 1): ("09:00", "10:00"), (2, 2): ("12:00", "13:00")}, "w2_2_from", "overlaps"),
    ],
)
def test_invalid_windows_are_refused_with_per_field_errors(manager, make_site, make_door, windows, field, message):
    site = make_site()
    a = make_door(site, "A")
    group = access.create_group(db.session, TEST_ACTOR, site, "Staff", [a], [Window(0, 420, 540)])
    db.session.commit()
    before = db.session.get(type(site), site.id).journal_seq
    data = [("name", "Staff renamed"), ("door", str(a.id)), *schedule_form(windows)]
    response = post(manager, f"/groups/{group.id}", data)
    assert response.status_code == 422
    assert f'id="{field}-error" role="alert"' in response.text
    assert message in response.text
    assert f'id="{field}" name="{field}"' in response.text and 'aria-invalid="true"' in response.text
    db.session.expire_all()
    group = db.session.get(AccessGroup, group.id)
    assert group.name == "Staff"
    assert [(w.weekday, w.start_minute, w.end_minute) for w in group.windows] == [(0, 420, 540)]
    assert new_entries(site, before) == []


def test_service_refuses_overlapping_windows(make_site, make_door):
    site = make_site()
    with pytest.raises(access.WindowsRejected) as err:
        access.create_group(
            db.session, TEST_ACTOR, site, "Bad", [make_door(site)], [Window(3, 0, 600), Window(3, 500, 700)]
        )
    assert err.value.problems == {1: "overlap"}


def test_duplicate_group_name_is_refused_next_to_the_name(manager, make_site, make_door):
    site = make_site()
    a = make_door(site, "A")
    access.create_group(db.session, TEST_ACTOR, site, "Staff", [a], [])
    db.session.commit()
    data = [("site", str(site.id)), ("name", "Staff"), ("door", str(a.id))]
    response = post(manager, "/groups/new", data)
    assert response.status_code == 409 and 'id="name-error"' in response.text
    assert db.session.scalar(select(func.count()).select_from(AccessGroup)) == 1


def test_new_group_asks_for_the_site_when_there_are_several(manager, make_site):
    make_site(), make_site()
    page = manager.get("/groups/new")
    assert page.status_code == 200 and '<select id="site" name="site"' in page.text


# ---- holidays -------------------------------------------------------------------------------------------------------


def test_holiday_add_and_remove_are_journalled(manager, make_site):
    site = make_site()
    before = site.journal_seq
    response = post(manager, "/holidays", {"site_id": site.id, "day": "2027-01-01", "name": "New Year"})
    assert response.status_code == 302
    holiday = db.session.scalar(select(Holiday))
    assert (holiday.day, holiday.name) == (date(2027, 1, 1), "New Year")
    assert new_entries(site, before) == [(JournalKind.SCHEDULE, {"holiday": "2027-01-01"})]
    assert roster.load_site(db.session, site).site.holidays == (date(2027, 1, 1),)
    page = manager.get("/holidays")
    assert "New Year" in page.text and "Friday" in page.text

    seq = db.session.get(type(site), site.id).journal_seq
    assert post(manager, f"/holidays/{holiday.id}/remove", {}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Holiday)) == 0
    assert new_entries(site, seq) == [(JournalKind.SCHEDULE, {"holiday": "2027-01-01", "removed": True})]
    assert roster.load_site(db.session, site).site.holidays == ()
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"holiday.add", "holiday.remove"} <= actions


@pytest.mark.parametrize(
    ("day", "name", "status", "field"),
    [("2027-01-01", "Again", 409, "day"), ("", "No date", 422, "day"), ("2027-02-01", "  ", 422, "holiday-name")],
)
def test_bad_holiday_is_refused_next_to_its_field(manager, make_site, day, name, status, field):
    site = make_site()
    access.add_holiday(db.session, TEST_ACTOR, site, date(2027, 1, 1), "New Year")
    db.session.commit()
    before = journal_count()
    response = post(manager, "/holidays", {"site_id": site.id, "day": day, "name": name})
    assert response.status_code == status
    assert f'id="{field}-{site.id}-error" role="alert"' in response.text
    assert db.session.scalar(select(func.count()).select_from(Holiday)) == 1
    assert journal_count() == before


# ---- roles ---------------------------------------------------------------------------------------------------------


def test_guard_cannot_open_or_change_doors_groups_and_holidays(client, make_user, make_site, make_door):
    site = make_site()
    door = make_door(site)
    group = access.create_group(db.session, TEST_ACTOR, site, "G", [door], [])
    db.session.commit()
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    for url in ("/doors", "/doors/new", f"/doors/{door.id}/edit", "/groups", "/groups/new", f"/groups/{group.id}"):
        assert client.get(url).status_code == 403, url
    assert client.get("/holidays").status_code == 403
    response = post(client, "/holidays", {"site_id": site.id, "day": "2027-01-01", "name": "X"})
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Holiday)) == 0
    assert "Doors &amp; groups" not in client.get("/passes").text


def test_groups_list_reads_runs_of_days_alike(manager, make_site, make_door):
    site = make_site()
    door = make_door(site, "A")
    weekdays = [Window(d, 420, 540) for d in range(5)]
    access.create_group(db.session, TEST_ACTOR, site, "Cleaners", [door], [*weekdays, Window(5, 600, 750)])
    access.create_group(db.session, TEST_ACTOR, site, "Closed", [door], [])
    db.session.commit()
    page = manager.get("/groups").text
    cleaners = page[page.index("Cleaners") :].split("</tr>")[0]
    assert "Monday\u2013Friday</span> 07:00\u201309:00" in cleaners and "Saturday</span> 10:00\u201312:30" in cleaners
    assert "Sunday" not in cleaners and "Tuesday" not in cleaners
    closed = page[page.index(">Closed<") :].split("</tr>")[0]
    assert "no windows: closed" in closed and 'data-badge="warn"' in closed


def test_the_group_form_marks_the_sites_usual_group_and_journals_nothing(manager, make_site, make_door):
    """Ticking 'usual group' marks this group and unmarks the other; the person form then offers it first.
    It only decides what forms offer, so terminals are sent nothing."""
    site = make_site()
    a = make_door(site, "A")
    cleaners = access.create_group(db.session, TEST_ACTOR, site, "Cleaning staff", [a], [Window(0, 420, 540)])
    residents = access.create_group(db.session, TEST_ACTOR, site, "Residents", [a], [Window(0, 0, 1440)])
    db.session.commit()
    before = db.session.get(type(site), site.id).journal_seq
    form = manager.get(f"/groups/{residents.id}")
    assert 'id="usual"' in form.text and not re.search(r'id="usual"[^>]*checked', form.text)

    def save(group, name, window, usual):
        data = [("name", name), ("door", str(a.id)), ("open_on_holidays", "1")]
        data += schedule_form({(0, 0): window}) + ([("usual", "1")] if usual else [])
        assert post(manager, f"/groups/{group.id}", data).status_code == 302

    save(residents, "Residents", ("00:00", "24:00"), usual=True)
    db.session.expire_all()
    assert (residents.usual, cleaners.usual) == (True, False)
    new_person = manager.get("/people/new")
    assert re.search(rf'value="{residents.id}"\s+checked', new_person.text)  # offered first, ticked
    assert not re.search(rf'value="{cleaners.id}"\s+checked', new_person.text)
    save(cleaners, "Cleaning staff", ("07:00", "09:00"), usual=True)  # moves the mark
    db.session.expire_all()
    assert (residents.usual, cleaners.usual) == (False, True)
    save(cleaners, "Cleaning staff", ("07:00", "09:00"), usual=False)  # and takes it away
    db.session.expire_all()
    assert (residents.usual, cleaners.usual) == (False, False)
    assert new_entries(site, before) == []
