"""Issue 19, words, times and languages: one time convention, full sentences, 24:00, 姓名, real dates, favicon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gatehouse_core.schedule import Window
from server.extensions import db
from server.models import ConsoleRole, ConsoleUser, Person
from server.services.access import access, sites
from server.services.errors import RuleViolation
from server.services.people import credentials
from server.services.reports import timefmt
from tests.conftest import TEST_ACTOR, csrf_token, login

MOMENT = datetime(2026, 12, 7, 8, 5, tzinfo=UTC)


def test_one_format_names_the_zone_and_its_offset():
    assert timefmt.site_time(MOMENT, "Asia/Shanghai") == "2026-12-07 16:05 (Asia/Shanghai, UTC+8)"
    assert timefmt.site_time(MOMENT, "Asia/Shanghai", seconds=True) == "2026-12-07 16:05:00 (Asia/Shanghai, UTC+8)"
    assert timefmt.site_time(MOMENT, "Asia/Kolkata") == "2026-12-07 13:35 (Asia/Kolkata, UTC+5:30)"
    assert timefmt.site_time(MOMENT, "America/Chicago") == "2026-12-07 02:05 (America/Chicago, UTC-6)"
    assert timefmt.site_time(MOMENT, "UTC") == "2026-12-07 08:05 (UTC)"
    assert timefmt.site_time(MOMENT, None) == "2026-12-07 08:05 (UTC)"
    assert timefmt.iso_local(MOMENT, "Asia/Shanghai") == "2026-12-07T16:05:00+08:00"


def test_a_window_is_24_hour_and_never_cst():
    text = timefmt.site_window(MOMENT, MOMENT + timedelta(hours=4), "Asia/Shanghai")
    assert text == "2026-12-07 16:05\u201320:05 (Asia/Shanghai, UTC+8)"
    later = timefmt.site_window(MOMENT, MOMENT + timedelta(hours=10), "Asia/Shanghai")
    assert later == "2026-12-07 16:05\u20132026-12-08 02:05 (Asia/Shanghai, UTC+8)"
    assert "CST" not in text + later and "AM" not in text + later


def test_the_home_zone_is_the_first_sites(app, make_site):
    assert timefmt.home_timezone(db.session) == "UTC"
    make_site("north", timezone="Asia/Shanghai")
    make_site("south", timezone="UTC")
    assert timefmt.home_timezone(db.session) == "Asia/Shanghai"


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def speak_chinese(username: str = "manager1") -> None:
    db.session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)).one().language = "zh_CN"
    db.session.commit()


def test_a_bad_card_uid_is_a_full_sentence(app, keys, make_site, make_person):
    person = make_person(make_site())
    with pytest.raises(RuleViolation) as refused:
        credentials.add_card(db.session, TEST_ACTOR, keys, person, "04A2B3")
    assert refused.value.code == "bad_card"
    assert refused.value.message == (
        "Enter the card number as printed on the card or shown by a desk reader: 8, 14 or 20 hexadecimal digits "
        "(0-9, A-F)."
    )


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1985-02-30", "1985-02-30 is not a date on the calendar; check the day and the month."),
        ("30/04/1990", "Write the date as YYYY-MM-DD, for example 1990-04-30."),
    ],
)
def test_a_date_that_does_not_exist_is_reported_as_such(manager, make_site, typed, said):
    site = make_site()
    page = manager.get("/people/new")
    response = manager.post(
        "/people/new",
        data={
            "csrf_token": csrf_token(page.text),
            "full_name": "Chen Jing",
            "site": site.id,
            "kind": "resident",
            "date_of_birth": typed,
        },
    )
    assert response.status_code == 422 and said in response.text
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_calendar_invalid_date_in_chinese(manager, make_site):
    speak_chinese()
    site = make_site()
    page = manager.get("/people/new")
    response = manager.post(
        "/people/new",
        data={
            "csrf_token": csrf_token(page.text),
            "full_name": "陈静",
            "site": site.id,
            "kind": "resident",
            "date_of_birth": "1985-02-30",
        },
    )
    assert "日历上没有 1985-02-30 这一天" in response.text


def test_a_persons_name_is_xingming(manager, make_site, make_person):
    make_person(make_site())
    speak_chinese()
    page = manager.get("/people").text
    assert "姓名" in page and "全名" not in page


def test_an_all_day_schedule_reads_00_to_24(manager, make_site, make_door):
    site = make_site()
    door = make_door(site, "A")
    new = manager.get(f"/groups/new?site={site.id}").text
    assert 'value="00:00"' in new and 'value="24:00"' in new and 'type="time"' not in new
    group = access.create_group(db.session, TEST_ACTOR, site, "All day", [door], [Window(d, 0, 1440) for d in range(7)])
    db.session.commit()
    edit = manager.get(f"/groups/{group.id}").text
    assert 'value="24:00"' in edit and "12:00 AM" not in edit
    assert "00:00\u201324:00" in manager.get("/groups").text


def test_the_favicon_is_served_and_linked(manager):
    with manager.get("/static/favicon.svg") as icon:  # a file response: closed here, not by the garbage collector
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
    assert 'rel="icon" type="image/svg+xml" href="/static/favicon.svg"' in manager.get("/").text


def test_csv_export_names_the_zone_and_offset(manager, make_site):
    from server.services.reports import event_log

    assert event_log.CSV_COLUMNS[0] == "time" and event_log.CSV_COLUMNS[-1] == "time_zone"
    page = manager.get("/events").text
    assert "times in UTC" not in page and "with their UTC offset" in page


def test_subject_access_shows_site_time(manager, make_site, make_person):
    person = make_person(make_site(timezone="Asia/Shanghai"))
    page = manager.get(f"/people/{person.id}/subject-access").text
    assert "(Asia/Shanghai, UTC+8)" in page and "Times are in UTC" not in page
    assert "Person added" in page and "<code>person.create</code>" not in page


def test_door_rename_refusal_is_a_sentence(app, make_site):
    site = make_site()
    sites.save_door(db.session, TEST_ACTOR, site, "North", sites.DoorMethods())
    with pytest.raises(Exception) as refused:
        sites.save_door(db.session, TEST_ACTOR, site, "North", sites.DoorMethods())
    assert str(refused.value.message)[0].isupper() and str(refused.value.message).endswith(".")  # type: ignore[attr-defined]
