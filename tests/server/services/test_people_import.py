"""Bulk CSV import of people: parsing, the synchronous runner, and the threaded path through the console."""

from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import AuditEntry, ConsoleRole, ImportJob, ImportStatus, Person, PersonKind, utcnow
from server.services.errors import RuleViolation
from server.services.people import csv_import as people_import
from tests.conftest import TEST_ACTOR, csrf_token, login

HEADER = "full_name,kind,unit,date_of_birth,phone\n"
FUTURE = (date.today() + timedelta(days=30)).isoformat()
MIXED = (
    HEADER
    + "Li Wei,resident,3-1201,1980-05-17,+86 138 0000 0000\n"  # row 2: fine
    + "Wang Fang,resident,3-1202,1980-02-30,\n"  # row 3: no such date
    + "Zhao Lei,alien,3-1203,,\n"  # row 4: unknown kind
    + ",staff,,,\n"  # row 5: empty name
    + f"Chen Jing,resident,3-1204,{FUTURE},\n"  # row 6: born in the future
    + "\n"  # row 7: blank line, not a row
    + "Sun Hao,Staff,,,\n"  # row 8: fine (kind is not case-sensitive)
)


def count_people() -> int:
    return db.session.scalar(select(func.count()).select_from(Person)) or 0


def wait_for_job(job_id: int, timeout: float = 60.0) -> ImportJob:
    """Poll the job row (in fresh transactions) until the background import has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        db.session.expire_all()
        job = db.session.get(ImportJob, job_id)
        if job is not None and job.status is not ImportStatus.RUNNING:
            return job
        time.sleep(0.05)
    raise AssertionError(f"import job {job_id} still running after {timeout} s")


@pytest.fixture
def manager(client, make_user):
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    return client


def upload(client, site_id: int, content: bytes, filename: str = "people.csv"):
    page = client.get("/people/import")
    return client.post(
        "/people/import",
        data={"csrf_token": csrf_token(page.text), "site": site_id, "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


# ---- parsing ---------------------------------------------------------------------------------------------------


def test_parse_reports_row_numbers_and_fields_without_contents(app, make_site):
    site = make_site()
    parsed = people_import.parse_csv(db.session, MIXED.encode(), site)
    assert parsed.total == 6
    assert [row.number for row in parsed.rows] == [2, 8]
    assert parsed.rows[1].fields["kind"] is PersonKind.STAFF
    assert [(e["row"], e["field"]) for e in parsed.errors] == [
        (3, "date_of_birth"),
        (4, "kind"),
        (5, "full_name"),
        (6, "date_of_birth"),
    ]
    # Reasons only: no cell of the file is repeated in the report.
    for value in ("Wang Fang", "1980-02-30", "alien", "Chen Jing", FUTURE):
        assert value not in str(parsed.errors)


@pytest.mark.parametrize(
    ("line", "field", "code"),
    [
        ("Li Wei,resident,,1980/05/17,", "date_of_birth", "bad_date"),
        ("Li Wei,resident,,17-05-1980,", "date_of_birth", "bad_date"),
        ("Li Wei,,,,", "kind", "kind_missing"),
        ("Li Wei,resident,,,phone me", "phone", "bad_phone"),
        ("Li Wei,resident," + "9" * 65 + ",,", "unit", "unit_too_long"),
        ("x" * 201 + ",resident,,,", "full_name", "name_too_long"),
        ("Li Wei,resident,,", "row", "cell_count"),
    ],
)
def test_parse_refuses_bad_cells(app, make_site, line, field, code):
    parsed = people_import.parse_csv(db.session, (HEADER + line + "\n").encode(), make_site())
    assert parsed.rows == []
    assert [(e["row"], e["field"], e["code"]) for e in parsed.errors] == [(2, field, code)]


def test_parse_site_column(app, make_site):
    home, other = make_site("home"), make_site("other")
    data = "full_name,kind,site\nA,resident,other\nB,resident,\nC,resident,nowhere\n"
    parsed = people_import.parse_csv(db.session, data.encode(), home)
    assert [(row.number, row.site_id) for row in parsed.rows] == [(2, other.id), (3, home.id)]
    assert [(e["row"], e["field"]) for e in parsed.errors] == [(4, "site")]


def test_parse_handles_a_byte_order_mark_and_header_case(app, make_site):
    data = "\ufeffFull_Name , KIND\r\nLi Wei,resident\r\n".encode()
    parsed = people_import.parse_csv(db.session, data, make_site())
    assert [row.fields["full_name"] for row in parsed.rows] == ["Li Wei"] and parsed.errors == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"full_name,kind,email\nLi Wei,resident,li@example.com\n", "unknown_column"),
        (b"full_name,unit\nLi Wei,3-1\n", "missing_column"),
        (b"full_name,kind,kind\n", "duplicate_column"),
        (HEADER.encode(), "no_rows"),
        (HEADER.encode() + b"\n\n", "no_rows"),
        (b"", "no_header"),
        ("full_name,kind\nLi Wei,resident\n".encode("utf-16"), "not_utf8"),
        (HEADER.encode() + b"Li,resident,,,\n" * (people_import.MAX_ROWS + 1), "too_many_rows"),
    ],
)
def test_parse_refuses_bad_files(app, make_site, data, code):
    with pytest.raises(RuleViolation) as refused:
        people_import.parse_csv(db.session, data, make_site())
    assert refused.value.code == code


def test_unknown_column_message_names_it(app, make_site):
    with pytest.raises(RuleViolation, match="'email'"):
        people_import.parse_csv(db.session, b"full_name,kind,email\n", make_site())


# ---- the synchronous runner ------------------------------------------------------------------------------------


def test_run_import_creates_rows_in_chunks_and_audits_once(app, make_site, make_user, monkeypatch):
    monkeypatch.setattr(people_import, "CHUNK", 3)
    site = make_site()
    user = make_user("manager1")
    data = HEADER + "".join(f"Person {n},resident,{n}-1,,\n" for n in range(7)) + "Bad,alien,,,\n"
    parsed = people_import.parse_csv(db.session, data.encode(), site)
    job = ImportJob(
        site_id=site.id,
        started_by=user.id,
        filename="x.csv",
        status=ImportStatus.RUNNING,
        total_rows=parsed.total,
        done_rows=1,
        errors=parsed.errors,
    )
    db.session.add(job)
    db.session.commit()

    finished = people_import.run_import(job.id, parsed.rows)
    assert finished.status is ImportStatus.DONE and finished.finished_at is not None
    assert (finished.total_rows, finished.done_rows, finished.created) == (8, 8, 7)
    assert people_import.job_state(finished) == "done" and people_import.skipped_rows(finished) == 1
    assert sorted(db.session.scalars(select(Person.unit))) == sorted(f"{n}-1" for n in range(7))
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "people.import")).all()
    assert len(entries) == 1 and entries[0].actor_id == user.id
    assert entries[0].details == {"status": "done", "rows": 8, "created": 7, "skipped": 1}
    # One import, one audit entry: no per-person entries.
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "person.create")) == 0


def test_run_import_failure_ends_the_job(app, make_site):
    site = make_site()
    parsed = people_import.parse_csv(db.session, (HEADER + "Li Wei,resident,,,\n").encode(), site)
    job = ImportJob(site_id=site.id, filename="x.csv", status=ImportStatus.RUNNING, total_rows=1, errors=[])
    db.session.add(job)
    db.session.commit()
    gone = people_import.ImportRow(2, 999_999, parsed.rows[0].fields)

    finished = people_import.run_import(job.id, [gone])
    assert finished.status is ImportStatus.FAILED and finished.created == 0
    assert count_people() == 0
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "people.import"))
    assert entry.details["status"] == "failed" and entry.actor_label == "system"


def test_a_job_running_for_over_an_hour_shows_interrupted(manager, make_site):
    site = make_site()
    job = ImportJob(
        site_id=site.id,
        filename="x.csv",
        status=ImportStatus.RUNNING,
        total_rows=10,
        done_rows=4,
        started_at=utcnow() - timedelta(hours=2),
        errors=[],
    )
    db.session.add(job)
    db.session.commit()
    assert people_import.job_state(job) == "interrupted"
    fragment = manager.get(f"/people/import/{job.id}/progress").text
    assert "data-final" in fragment and "interrupted" in fragment
    page = manager.get(f"/people/import/{job.id}").text
    assert "data-poll=" not in page and "interrupted" in page


# ---- through the console, on the background thread ---------------------------------------------------------------


def test_import_end_to_end(manager, make_site):
    site = make_site()
    page = manager.get("/people/import").text
    assert "Rows with errors are skipped" in page and 'enctype="multipart/form-data"' in page

    response = upload(manager, site.id, MIXED.encode())
    assert response.status_code == 302
    job_id = int(re.fullmatch(r"/people/import/(\d+)", response.headers["Location"]).group(1))
    status_page = manager.get(response.headers["Location"])
    assert status_page.status_code == 200
    assert "<progress" in status_page.text and 'aria-live="polite"' in status_page.text

    job = wait_for_job(job_id)
    assert job.status is ImportStatus.DONE
    assert (job.total_rows, job.done_rows, job.created) == (6, 6, 2)
    assert sorted(db.session.scalars(select(Person.full_name))) == ["Li Wei", "Sun Hao"]
    assert db.session.scalar(select(Person.site_id).where(Person.full_name == "Sun Hao")) == site.id

    fragment = manager.get(f"/people/import/{job_id}/progress").text
    assert "data-final" in fragment and "2 people created, 4 rows skipped" in fragment
    report = manager.get(f"/people/import/{job_id}").text
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td>', report)
    assert rows == [("3", "Date of birth"), ("4", "Kind"), ("5", "Full name"), ("6", "Date of birth")]
    assert "Wang Fang" not in report and "alien" not in report
    assert "data-poll=" not in report
    audits = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "people.import")).all()
    assert [a.details["created"] for a in audits] == [2]


def test_import_with_a_byte_order_mark(manager, make_site):
    site = make_site()
    response = upload(manager, site.id, "\ufeff".encode() + HEADER.encode() + b"Li Wei,staff,,,\n")
    job = wait_for_job(int(response.headers["Location"].rsplit("/", 1)[1]))
    assert job.created == 1 and job.errors == []
    assert db.session.scalar(select(Person.kind)) is PersonKind.STAFF


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"full_name,kind,email\nLi Wei,resident,x\n", "Unknown column"),
        (HEADER.encode(), "no rows"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_refused_files_create_nothing(manager, make_site, content, message):
    site = make_site()
    response = upload(manager, site.id, content)
    assert response.status_code == 422 and message in response.text
    assert 'id="file-error"' in response.text
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert count_people() == 0


def test_upload_without_a_file_is_refused(manager, make_site):
    site = make_site()
    page = manager.get("/people/import")
    response = manager.post("/people/import", data={"csrf_token": csrf_token(page.text), "site": site.id})
    assert response.status_code == 422 and "Choose a CSV file" in response.text


def test_guard_cannot_import(client, make_user, make_site):
    site = make_site()
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    token = csrf_token(client.get("/").text)
    response = client.post(
        "/people/import",
        data={"csrf_token": token, "site": site.id, "file": (io.BytesIO(MIXED.encode()), "p.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 403
    assert client.get("/people/import/1").status_code == 403
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_unknown_job_is_404(manager):
    assert manager.get("/people/import/4242").status_code == 404
    assert manager.get("/people/import/4242/progress").status_code == 404


def test_create_person_service_still_audits(app, make_site):
    # The import shares create_person's rules but not its per-person audit entry.
    from server.services.people import people

    people.create_person(db.session, TEST_ACTOR, make_site(), full_name="Li Wei")
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "person.create")) == 1
