"""Console People pages: list, search, filters, paging, create, edit and move-out."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import AuditEntry, ConsentChannel, ConsoleRole, Person, PersonKind, PersonStatus
from server.services.access import access
from server.services.errors import RuleViolation
from server.services.face import consent
from server.services.people import people
from server.services.people.people import FaceFilter, PeopleQuery
from server.services.privacy import privacy
from tests.conftest import TEST_ACTOR, csrf_token, login
from tests.server.services.test_subject_access import populate

# Each name is the row's link to the person (the whole row is clickable).
NAME_LINK = re.compile(r'<td><a href="/people/(\d+)" class="row-target">([^<]+)</a></td>')


def names(html: str) -> list[str]:
    """The names listed in the people table, in order."""
    return [name for _, name in NAME_LINK.findall(html)]


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def test_search_by_name_unit_and_phone(manager, make_site, make_person):
    site = make_site()
    make_person(site, "Li Wei", unit="3-1201")
    make_person(site, "Wang Fang", unit="5-0101", phone="+86 139 1111 2222")
    make_person(site, "Zhao Lei", unit="13-1")
    assert names(manager.get("/people?q=wei").text) == ["Li Wei"]
    assert names(manager.get("/people?q=WANG").text) == ["Wang Fang"]
    # Units match from the start only: "1" finds 13-1 but not 3-1201 or 5-0101.
    assert names(manager.get("/people?q=13-").text) == ["Zhao Lei"]
    assert names(manager.get("/people?q=3-12").text) == ["Li Wei"]
    assert names(manager.get("/people?q=1111").text) == ["Wang Fang"]
    # LIKE wildcards in the search are taken literally.
    assert names(manager.get("/people?q=%25").text) == []
    assert "Nobody matches these filters" in manager.get("/people?q=nobody").text


def test_search_follows_renames_and_removals_and_takes_quotes_literally(manager, make_site, make_person):
    # On SQLite searches of three characters or more go through the trigram index, kept by triggers: it must
    # follow every change to the people table, and a quote or FTS operator in the text is just text.
    site = make_site()
    li = make_person(site, "Li Weiming", unit="7-0303", phone="138 0000 1234")
    make_person(site, 'O"Neil Amy', unit="8-0808")
    make_person(site, "欧阳娜娜", unit="9-0909")
    assert names(manager.get("/people?q=weim").text) == ["Li Weiming"]
    assert names(manager.get("/people?q=O%22Nei").text) == ["O&#34;Neil Amy"]  # as the page escapes it
    assert names(manager.get("/people?q=Amy OR Li").text) == []
    assert names(manager.get("/people?q=阳娜娜").text) == ["欧阳娜娜"]
    assert names(manager.get("/people?q=娜娜").text) == ["欧阳娜娜"]  # two characters: read without the index
    people.update_person(db.session, TEST_ACTOR, li, full_name="Li Xiaoming", unit="7-0404", phone="138 0000 9999")
    db.session.commit()
    assert names(manager.get("/people?q=weim").text) == []
    assert names(manager.get("/people?q=xiaom").text) == ["Li Xiaoming"]
    assert names(manager.get("/people?q=7-04").text) == ["Li Xiaoming"]
    assert names(manager.get("/people?q=9999").text) == ["Li Xiaoming"]
    assert names(manager.get("/people?q=1234").text) == []
    db.session.delete(li)
    db.session.commit()
    assert names(manager.get("/people?q=xiaom").text) == []


def test_filters_by_site_kind_status_and_group(manager, make_site, make_door, make_person):
    north, south = make_site(), make_site()
    door = make_door(north)
    make_person(north, "Ann Resident")
    staff = make_person(north, "Bo Staff", kind=PersonKind.STAFF)
    make_person(south, "Cai Visitor", kind=PersonKind.VISITOR)
    gone = make_person(south, "Du Gone")
    people.move_out(db.session, TEST_ACTOR, gone)
    group = access.create_group(db.session, TEST_ACTOR, north, "Staff", [door], [])
    access.add_member(db.session, TEST_ACTOR, group, staff)
    db.session.commit()

    assert names(manager.get(f"/people?site={south.id}").text) == ["Cai Visitor", "Du Gone"]
    assert names(manager.get("/people?kind=staff").text) == ["Bo Staff"]
    assert names(manager.get("/people?status=moved_out").text) == ["Du Gone"]
    assert names(manager.get(f"/people?status=active&site={south.id}").text) == ["Cai Visitor"]
    assert names(manager.get(f"/people?group={group.id}").text) == ["Bo Staff"]
    # Unknown filter values are ignored rather than failing.
    assert len(names(manager.get("/people?kind=alien&site=x&face=maybe").text)) == 4
    page = manager.get("/people").text
    assert "moved out" in page and f'<option value="{group.id}"' in page


def test_face_filter_and_badges(app, manager, keys):
    subject = populate(keys)
    db.session.commit()
    bystander = db.session.scalar(select(Person).where(Person.full_name == "Someone Else"))
    assert names(manager.get("/people?face=enrolled").text) == ["Zhang Min"]
    assert names(manager.get("/people?face=none").text) == ["Someone Else"]
    assert names(manager.get("/people?face=consented").text) == []

    people.update_person(db.session, TEST_ACTOR, bystander, date_of_birth=date(1990, 1, 2))
    site = bystander.site
    notice = privacy.current_notice(db.session, site)
    consent.give_consent(db.session, TEST_ACTOR, bystander, notice_sha256=notice.sha256, channel=ConsentChannel.DESK)
    db.session.commit()
    assert names(manager.get("/people?face=consented").text) == ["Someone Else"]

    page = manager.get("/people").text
    row = page[page.index(f'/people/{subject.person_id}"') :].split("</tr>")[0]
    # One active card and one app code; the face badge on the enrolled person only.
    assert '<td class="num">2</td>' in row and "enrolled" in row


def test_pages_of_fifty_with_next_and_previous(manager, make_site):
    site = make_site()
    for n in range(120):
        people.create_person(db.session, TEST_ACTOR, site, full_name=f"Person {n:03d}")
    db.session.commit()

    first = manager.get("/people").text
    assert names(first) == [f"Person {n:03d}" for n in range(50)]
    assert "Previous page" not in first
    second_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = manager.get(second_url).text
    assert names(second) == [f"Person {n:03d}" for n in range(50, 100)]
    third = manager.get(re.search(r'href="([^"]+)" rel="next"', second).group(1).replace("&amp;", "&")).text
    assert names(third) == [f"Person {n:03d}" for n in range(100, 120)]
    assert 'rel="next"' not in third
    back = manager.get(re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")).text
    assert names(back) == names(first)

    descending = manager.get("/people?sort=-name").text
    assert names(descending)[:2] == ["Person 119", "Person 118"]
    assert 'aria-sort="descending"' in descending


def test_keyset_paging_survives_equal_names(app, make_site):
    site = make_site()
    made = [people.create_person(db.session, TEST_ACTOR, site, full_name="Same Name").id for _ in range(7)]
    db.session.commit()
    seen, after = [], None
    while True:
        page = people.search_people(db.session, PeopleQuery(after=after), limit=3)
        seen += [row.id for row in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(made)
    back = people.search_people(db.session, PeopleQuery(before=seen[3]), limit=3)
    assert [row.id for row in back.rows] == seen[:3]
    filtered = people.search_people(db.session, PeopleQuery(face=FaceFilter.NONE, status=PersonStatus.ACTIVE))
    assert len(filtered.rows) == 7 and filtered.next_after is None


def test_create_form_labels_and_errors_change_nothing(manager, make_site):
    site = make_site()
    page = manager.get("/people/new")
    for label in ("Full name", "Site", "Kind", "Unit", "Date of birth", "Phone"):
        assert re.search(rf"<label for=\"\w+\">{label}</label>", page.text), label
    assert 'type="date"' in page.text and ">Create person</button>" in page.text

    future = (date.today() + timedelta(days=3)).isoformat()
    response = manager.post(
        "/people/new",
        data={
            "csrf_token": csrf_token(page.text),
            "full_name": "  ",
            "site": site.id,
            "kind": "resident",
            "unit": "7-301",
            "date_of_birth": future,
            "phone": "",
        },
    )
    assert response.status_code == 422
    assert re.search(r"Enter the person(&#39;|')s full name.", response.text)
    assert 'aria-invalid="true"' in response.text and 'value="7-301"' in response.text
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0

    response = manager.post(
        "/people/new",
        data={
            "csrf_token": csrf_token(page.text),
            "full_name": "Chen Jing",
            "site": site.id,
            "kind": "staff",
            "date_of_birth": future,
        },
    )
    assert response.status_code == 422 and "The date of birth lies in the future" in response.text
    assert 'id="date_of_birth-error"' in response.text
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0

    response = manager.post(
        "/people/new",
        data={"csrf_token": csrf_token(page.text), "full_name": "Chen Jing", "site": site.id, "kind": "staff"},
    )
    person = db.session.scalar(select(Person))
    assert response.status_code == 302 and response.headers["Location"] == f"/people/{person.id}"
    assert person.kind is PersonKind.STAFF and person.site_id == site.id and person.date_of_birth is None


def test_create_refuses_a_badly_written_date(manager, make_site):
    site = make_site()
    page = manager.get("/people/new")
    response = manager.post(
        "/people/new",
        data={
            "csrf_token": csrf_token(page.text),
            "full_name": "Chen Jing",
            "site": site.id,
            "kind": "resident",
            "date_of_birth": "30/04/1990",
        },
    )
    assert response.status_code == 422 and 'id="date_of_birth-error"' in response.text
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_edit_audits_field_names_only(manager, make_site, make_person):
    site = make_site()
    person = make_person(site, "Li Wei", unit="3-1201", phone="123")
    page = manager.get(f"/people/{person.id}/edit")
    assert page.status_code == 200 and 'value="3-1201"' in page.text
    assert 'id="site"' not in page.text and "cannot move to another site" in page.text
    response = manager.post(
        f"/people/{person.id}/edit",
        data={
            "csrf_token": csrf_token(page.text),
            "full_name": "Li Wei",
            "kind": "resident",
            "unit": "9-0909",
            "date_of_birth": "1985-06-01",
            "phone": "+86 555",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == f"/people/{person.id}"
    db.session.refresh(person)
    assert (person.unit, person.phone, person.date_of_birth) == ("9-0909", "+86 555", date(1985, 6, 1))
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "person.update"))
    assert entry.details == {"fields": ["unit", "date_of_birth", "phone"]}
    assert "9-0909" not in str(entry.details) and "555" not in str(entry.details)


def test_edit_with_errors_changes_nothing(manager, make_site, make_person):
    person = make_person(make_site(), "Li Wei", unit="3-1201")
    page = manager.get(f"/people/{person.id}/edit")
    response = manager.post(
        f"/people/{person.id}/edit",
        data={"csrf_token": csrf_token(page.text), "full_name": "", "kind": "resident", "unit": "4-4"},
    )
    assert response.status_code == 422 and 'value="4-4"' in response.text
    db.session.refresh(person)
    assert person.full_name == "Li Wei" and person.unit == "3-1201"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "person.update")) is None


def test_update_person_rules(app, keys, make_site, make_person):
    person = make_person(make_site(), "Li Wei")
    other = make_site()
    with pytest.raises(RuleViolation) as refused:
        people.update_person(db.session, TEST_ACTOR, person, site=other)
    assert refused.value.code == "site_fixed"
    with pytest.raises(RuleViolation):
        people.update_person(db.session, TEST_ACTOR, person, pseudonym="p-x")
    with pytest.raises(RuleViolation):
        people.update_person(db.session, TEST_ACTOR, person, phone="call me")
    assert people.update_person(db.session, TEST_ACTOR, person, full_name=" Li Wei ") == []

    # A birth date that would make an adult's own face consent invalid is refused.
    populate(keys)
    enrolled = db.session.scalar(select(Person).where(Person.full_name == "Zhang Min"))
    with pytest.raises(RuleViolation) as refused:
        people.update_person(db.session, TEST_ACTOR, enrolled, date_of_birth=date.today() - timedelta(days=365 * 5))
    assert refused.value.code == "birth_date_conflicts_with_consent"
    assert enrolled.date_of_birth == date(1980, 5, 17)


def test_move_out_from_the_edit_page(manager, make_site, make_person):
    person = make_person(make_site(), "Li Wei")
    page = manager.get(f"/people/{person.id}/edit").text
    assert f'action="/people/{person.id}/move-out"' in page and "data-confirm=" in page
    response = manager.post(f"/people/{person.id}/move-out", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == f"/people/{person.id}"
    db.session.refresh(person)
    assert person.status is PersonStatus.MOVED_OUT and person.moved_out_at is not None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "person.move_out")) is not None
    # A second move-out is refused with a message, not an error page.
    again = manager.post(f"/people/{person.id}/move-out", data={"csrf_token": csrf_token(page)})
    assert again.status_code == 302 and again.headers["Location"] == f"/people/{person.id}/edit"
    assert "already moved out" in manager.get(f"/people/{person.id}/edit").text
    assert manager.post(f"/people/{person.id}/move-out").status_code == 400  # no CSRF token


def test_guard_is_refused(client, make_user, make_site, make_person):
    person = make_person(make_site(), "Li Wei")
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    for url in ("/people", "/people/new", f"/people/{person.id}/edit", "/people/import"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client.get("/").text)
    assert client.post(f"/people/{person.id}/move-out", data={"csrf_token": token}).status_code == 403
    db.session.refresh(person)
    assert person.status is PersonStatus.ACTIVE


def test_missing_person_is_404(manager):
    assert manager.get("/people/999999/edit").status_code == 404
