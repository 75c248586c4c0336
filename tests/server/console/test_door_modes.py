"""Console: lockdown and emergency release (start, banner on every page, lift) and unlock schedules (both databases)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from server.extensions import db
from server.models import AccessGroup, AuditEntry, ConsoleRole, DoorOverride, DoorUnlockSchedule
from server.services.access import access, door_modes
from tests.conftest import TEST_ACTOR, csrf_token, login


def post(client, url: str, data: dict) -> object:
    token = csrf_token(client.get("/door-modes").text)
    return client.post(url, data=MultiDict([*((k, str(v)) for k, v in data.items()), ("csrf_token", token)]))


@pytest.fixture
def guard(client, make_user):
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    return client


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def test_a_guard_locks_a_door_down_and_every_page_shows_it(guard, make_site, make_door):
    site = make_site()
    front = make_door(site, "Front")
    make_door(site, "Back")
    reply = post(
        guard,
        "/door-modes",
        {"site_id": site.id, "mode": "lockdown", "scope": "door", "door_id": front.id, "reason": "Intruder seen"},
    )
    assert reply.status_code == 302
    row = db.session.scalars(select(DoorOverride)).one()
    assert (row.door_id, row.reason, row.started_by) == (front.id, "Intruder seen", "guard1")
    for page in ("/door-modes", "/"):
        text = guard.get(page, follow_redirects=True).text
        assert 'class="override-banner"' in text and "Intruder seen" in text
    # A guard may not lift a lockdown: the page says so, and the service refuses a forged request.
    assert "A manager lifts a lockdown." in guard.get("/door-modes").text
    refused = post(guard, f"/door-modes/{row.batch}/lift", {"reason": "ok"})
    assert refused.status_code == 403
    assert door_modes.live_overrides(db.session)


def test_a_reason_is_required(guard, make_site, make_door):
    site = make_site()
    make_door(site)
    reply = post(guard, "/door-modes", {"site_id": site.id, "mode": "emergency_release", "scope": "site", "reason": ""})
    assert reply.status_code == 422 and "Give a reason" in reply.text
    assert db.session.scalars(select(DoorOverride)).first() is None


def test_a_manager_releases_a_door_group_and_lifts_it_with_a_reason(manager, make_site, make_door):
    site = make_site()
    a, b = make_door(site, "A"), make_door(site, "B")
    make_door(site, "C")
    group = access.create_group(db.session, TEST_ACTOR, site, "Lobby", [a, b], [])
    db.session.commit()
    reply = post(
        manager,
        "/door-modes",
        {"site_id": site.id, "mode": "emergency_release", "scope": "group", "group_id": group.id, "reason": "Fire"},
    )
    assert reply.status_code == 302
    [live] = door_modes.live_overrides(db.session)
    assert live.door_ids == (a.id, b.id)
    assert post(manager, f"/door-modes/{live.batch}/lift", {"reason": ""}).status_code == 422
    assert post(manager, f"/door-modes/{live.batch}/lift", {"reason": "All clear"}).status_code == 302
    assert door_modes.live_overrides(db.session) == []
    assert 'class="override-banner"' not in manager.get("/door-modes").text
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"door.emergency_release", "door.emergency_release.lift"} <= actions
    assert db.session.get(AccessGroup, group.id) is not None


def test_unlock_schedule_is_edited_from_the_door(manager, make_site, make_door):
    site = make_site()
    door = make_door(site, "Lobby")
    assert f"/doors/{door.id}/unlock-schedule" in manager.get(f"/doors/{door.id}/edit").text
    token = csrf_token(manager.get(f"/doors/{door.id}/unlock-schedule").text)
    reply = manager.post(
        f"/doors/{door.id}/unlock-schedule",
        data={"csrf_token": token, "day-0": "09:00-12:00, 13:00-17:00", "day-4": "09:00-17:00", "first_person_in": "y"},
    )
    assert reply.status_code == 302
    row = db.session.get(DoorUnlockSchedule, door.id)
    assert json.loads(row.windows) == [[0, 540, 720], [0, 780, 1020], [4, 540, 1020]] and row.first_person_in
    bad = manager.post(f"/doors/{door.id}/unlock-schedule", data={"csrf_token": token, "day-1": "17:00-09:00"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text


def test_guards_cannot_edit_unlock_schedules(guard, make_site, make_door):
    door = make_door(make_site())
    assert guard.get(f"/doors/{door.id}/unlock-schedule").status_code == 403
