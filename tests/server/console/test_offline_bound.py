"""The offline bound on the server: terminals learn it, events decided past it are stored and shown (both databases)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from gatehouse_core.wire.records import OfflinePolicy, SiteRecord
from server.extensions import db
from server.link import event_ingest, roster
from server.models import AccessEvent, AuditEntry, ConsoleRole, JournalEntry, JournalKind, PersonKind, Site
from server.services.access import access
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, csrf_token, login

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def setup(make_site, make_door, make_person):
    site = make_site()
    door = make_door(site, "Gate")
    group = access.create_group(db.session, TEST_ACTOR, site, "All", [door], ALWAYS.windows)
    terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "T1", [door]).terminal
    db.session.commit()
    resident = make_person(site, "Li Wei")
    guard = make_person(site, "Zhang Guard", kind=PersonKind.STAFF)
    for person in (resident, guard):
        access.add_member(db.session, TEST_ACTOR, group, person)
    db.session.commit()
    return {"site": site, "door": door, "terminal": terminal, "resident": resident, "guard": guard}


def records_of(setup):
    terminal = setup["terminal"]
    scope = roster.scope_of(db.session, terminal)
    return roster.full_roster(db.session, setup["site"], scope, roster.HashOnlySealer())


# ---- what terminals hold ----------------------------------------------------------------------------------------


def test_the_site_record_carries_the_bound_and_policy_and_people_their_kind(setup):
    site: Site = setup["site"]
    records = records_of(setup)
    default = next(r for r in records if isinstance(r, SiteRecord))
    assert (default.max_offline_hours, default.offline_policy) == (72, OfflinePolicy.KEEP_RESIDENTS)
    # At the defaults it encodes exactly as before: terminals' stored rosters keep their hash.
    assert "offline" not in default.model_dump_json()
    kinds = {r.key: r.person_kind for r in records if r.kind == "person"}
    assert kinds == {setup["resident"].pseudonym: "resident", setup["guard"].pseudonym: "staff"}

    site.max_offline_hours, site.offline_policy = 5, OfflinePolicy.FAIL_SECURE
    db.session.commit()
    changed = next(r for r in records_of(setup) if isinstance(r, SiteRecord))
    assert (changed.max_offline_hours, changed.offline_policy) == (5, OfflinePolicy.FAIL_SECURE)


# ---- events decided past the bound ------------------------------------------------------------------------------


def event(door_id: int, past: bool, reason: str = "granted") -> EventRecord:
    return EventRecord(
        uid=str(uuid.uuid4()),
        door=door_id,
        method=EntryMethod.CARD,
        decision=Decision.GRANT if reason == "granted" else Decision.DENY,
        reason=reason,
        at=AT,
        past_offline_bound=past,
    )


def ingest(setup, *events: EventRecord) -> None:
    sender = event_ingest.sender_of(db.session, setup["terminal"])
    event_ingest.ingest(db.session, [(sender, list(events))])
    db.session.commit()


def test_ingest_stores_whether_an_event_was_decided_past_the_bound(setup):
    within, past = event(setup["door"].id, False), event(setup["door"].id, True, "offline_bound")
    ingest(setup, within, past)
    stored = {
        uid: past for uid, past in db.session.execute(select(AccessEvent.event_uid, AccessEvent.past_offline_bound))
    }
    assert stored == {within.uid: False, past.uid: True}


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def test_the_events_page_and_export_mark_events_decided_past_the_bound(setup, manager):
    ingest(setup, event(setup["door"].id, False), event(setup["door"].id, True, "offline_bound"))
    page = manager.get("/events")
    assert page.status_code == 200
    assert page.text.count("decided offline past the bound") == 1
    assert "Refused: terminal cut off from the server past its offline bound" in page.text
    rows = list(csv.reader(io.StringIO(manager.get("/events.csv").get_data(as_text=True))))
    column = rows[0].index("past_offline_bound")
    assert sorted(r[column] for r in rows[1:]) == ["", "yes"]


# ---- the site's settings in the console -------------------------------------------------------------------------


def post(manager, site: Site, **fields: object):
    page = manager.get("/offline-bound")
    data = {"offline_alarm_minutes": 10, "max_offline_hours": 72, "offline_policy": "keep_residents", **fields}
    return manager.post(f"/offline-bound/{site.id}", data={**data, "csrf_token": csrf_token(page.text)})


def resets(site: Site) -> list[dict[str, object]]:
    return list(
        db.session.scalars(
            select(JournalEntry.payload).where(
                JournalEntry.site_id == site.id, JournalEntry.kind == JournalKind.ROSTER_RESET
            )
        )
    )


def test_a_manager_sets_the_bound_audited_and_journalled_for_terminals(setup, manager):
    site: Site = setup["site"]
    page = manager.get("/offline-bound")
    assert page.status_code == 200 and 'name="max_offline_hours" value="72"' in page.text
    response = post(manager, site, offline_alarm_minutes=15, max_offline_hours=24, offline_policy="fail_secure")
    assert response.status_code == 302
    db.session.expire_all()
    assert (site.offline_alarm_minutes, site.max_offline_hours, site.offline_policy) == (
        15,
        24,
        OfflinePolicy.FAIL_SECURE,
    )
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "site.offline_bound")).one()
    assert entry.details["max_offline_hours"] == 24 and entry.details["before"]["max_offline_hours"] == 72
    assert resets(site) == [{"reason": "offline_bound"}]
    # The alarm is the server's alone: changing only it journals nothing for terminals.
    assert (
        post(manager, site, offline_alarm_minutes=30, max_offline_hours=24, offline_policy="fail_secure").status_code
        == 302
    )
    assert len(resets(site)) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"offline_alarm_minutes": 0}, "offline_alarm_minutes"),
        ({"offline_alarm_minutes": 10_081}, "offline_alarm_minutes"),
        ({"offline_alarm_minutes": "soon"}, "offline_alarm_minutes"),
        ({"max_offline_hours": 0}, "max_offline_hours"),
        ({"max_offline_hours": 8_761}, "max_offline_hours"),
        ({"max_offline_hours": ""}, "max_offline_hours"),
        ({"offline_policy": "open_for_all"}, "offline_policy"),
    ],
)
def test_values_out_of_range_are_refused_with_the_field_marked(setup, manager, fields, field):
    response = post(manager, setup["site"], **fields)
    assert response.status_code == 422
    marker = {"offline_alarm_minutes": "alarm-{}-error", "max_offline_hours": "hours-{}-error"}.get(field)
    assert 'role="alert"' in response.text
    if marker is not None:
        assert f'id="{marker.format(setup["site"].id)}"' in response.text
    db.session.expire_all()
    assert setup["site"].max_offline_hours == 72 and resets(setup["site"]) == []
