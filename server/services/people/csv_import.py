"""Bulk import of people from a CSV file: check every row first, then create the valid ones in the background.

Rows with errors are skipped and reported by row number, field and reason (never the row's contents); the
valid rows are created. Row numbers count the header as row 1, as spreadsheets number them.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from server.extensions import db
from server.models import ConsoleUser, ImportJob, ImportStatus, Site, utcnow
from server.services import audit
from server.services.audit import SYSTEM, Actor
from server.services.errors import RuleViolation
from server.services.people.people import build_person, clean_fields, field_errors
from server.services.session import DbSession

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("full_name", "kind")
OPTIONAL_COLUMNS = ("unit", "date_of_birth", "phone", "site")
MAX_ROWS = 20_000
CHUNK = 200
# A job still running this long after it started was cut off by a restart: its rows lived only in memory.
INTERRUPTED_AFTER = timedelta(hours=1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ImportRow:
    """A checked row, ready to become a person."""

    number: int
    site_id: int
    fields: dict[str, Any]


@dataclass
class ParsedCsv:
    """The valid rows, the per-row errors and how many data rows the file has."""

    rows: list[ImportRow] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


def parse_csv(session: DbSession, data: bytes, default_site: Site) -> ParsedCsv:
    """Check a CSV upload row by row. File-level problems (encoding, header, size) raise RuleViolation."""
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte order mark; accept the file either way
    except UnicodeDecodeError:
        raise RuleViolation(
            "The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again.", code="not_utf8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise RuleViolation("The file is empty: it needs a header row and one row per person.", code="no_header")
        columns = _check_header(header)
        sites = {code: site_id for code, site_id in session.execute(select(Site.code, Site.id))}
        parsed = ParsedCsv()
        for index, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are not rows
            parsed.total += 1
            if parsed.total > MAX_ROWS:
                raise RuleViolation(
                    f"The file has more than {MAX_ROWS} rows. Split it into smaller files.", code="too_many_rows"
                )
            _check_row(parsed, index, columns, cells, sites, default_site.id)
    except csv.Error:
        raise RuleViolation(
            "The file is not valid CSV (check the quotes). Nothing was imported.", code="bad_csv"
        ) from None
    if parsed.total == 0:
        raise RuleViolation("The file has a header but no rows, so there is nothing to import.", code="no_rows")
    return parsed


def _check_header(header: list[str]) -> list[str]:
    columns = [cell.strip().lower() for cell in header]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise RuleViolation(
            f"Unknown column(s): {', '.join(repr(c) for c in unknown)}. "
            f"Use only: {', '.join((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))}.",
            code="unknown_column",
        )
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        raise RuleViolation(f"Column(s) named twice: {', '.join(doubled)}.", code="duplicate_column")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise RuleViolation(f"The header lacks the column(s): {', '.join(missing)}.", code="missing_column")
    return columns


def _check_row(
    parsed: ParsedCsv, number: int, columns: list[str], cells: list[str], sites: dict[str, int], default: int
) -> None:
    def fail(name: str, code: str, message: str) -> None:
        parsed.errors.append({"row": number, "field": name, "code": code, "message": message})

    if len(cells) != len(columns):
        fail("row", "cell_count", f"The row has {len(cells)} cells; the header has {len(columns)}.")
        return
    values = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
    site_id = default
    if values.get("site"):
        found = sites.get(values["site"])
        if found is None:
            fail("site", "unknown_site", "No site has this code.")
        else:
            site_id = found
    fields: dict[str, Any] = {
        "full_name": values["full_name"],
        "kind": values["kind"].lower(),
        "unit": values.get("unit") or None,
        "phone": values.get("phone") or None,
        "date_of_birth": None,
    }
    born = values.get("date_of_birth") or ""
    if born:
        try:
            if not _ISO_DATE.fullmatch(born):
                raise ValueError(born)
            fields["date_of_birth"] = date.fromisoformat(born)
        except ValueError:
            fail(
                "date_of_birth",
                "bad_date",
                "The date of birth must be a day that exists on the calendar, written YYYY-MM-DD "
                "(for example 1990-04-30).",
            )
            fields.pop("date_of_birth")
    if not fields["kind"]:
        fail("kind", "kind_missing", "The kind is empty: write resident, staff or visitor.")
        fields.pop("kind")
    for error in field_errors(**fields):
        fail(error.field, error.code, error.message)
    if parsed.errors and parsed.errors[-1]["row"] == number:
        return
    parsed.rows.append(ImportRow(number, site_id, clean_fields(**fields)))


def start_import(
    session: DbSession, actor: Actor, app: Flask, site: Site, filename: str, parsed: ParsedCsv
) -> ImportJob:
    """Record the job (committed) and create its valid rows in a background thread; returns at once."""
    skipped = len({e["row"] for e in parsed.errors})
    job = ImportJob(
        site_id=site.id,
        started_by=actor.user_id,
        filename=filename[:255],
        status=ImportStatus.RUNNING,
        total_rows=parsed.total,
        done_rows=skipped,
        created=0,
        errors=parsed.errors,
    )
    session.add(job)
    # The thread reads the job from its own session, so it must be committed first.
    session.commit()
    job_id, rows = job.id, list(parsed.rows)

    def work() -> None:
        with app.app_context():
            try:
                run_import(job_id, rows)
            except Exception as exc:  # a thread has nobody to raise to; the job shows interrupted
                log.error("people import %s could not be finished: %s", job_id, type(exc).__name__)

    threading.Thread(target=work, name=f"people-import-{job_id}", daemon=True).start()
    return job


def run_import(job_id: int, rows: list[ImportRow]) -> ImportJob:
    """Create the rows of job `job_id`, committing every CHUNK rows; needs an app context. Audits once at the end."""
    session = db.session
    job = session.get(ImportJob, job_id)
    if job is None:
        raise RuntimeError(f"no import job {job_id}")
    try:
        sites: dict[int, Site] = {}
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            for row in chunk:
                site = sites.get(row.site_id) or session.get(Site, row.site_id)
                if site is None:
                    raise RuleViolation("A site was deleted during the import.", code="site_gone")
                sites[row.site_id] = site
                session.add(build_person(site, row.fields))
            job.done_rows += len(chunk)
            job.created += len(chunk)
            session.commit()
        job.status = ImportStatus.DONE
    except Exception as exc:  # any failure must end the job visibly
        session.rollback()
        # Only the kind of error: its text can quote row values, which must not reach the log.
        log.error("people import %s failed after %s of its rows: %s", job_id, job.done_rows, type(exc).__name__)
        job = session.get(ImportJob, job_id) or job
        job.status = ImportStatus.FAILED
    job.finished_at = utcnow()
    audit.record(
        session,
        _starter(session, job),
        "people.import",
        "import_job",
        job.id,
        site_id=job.site_id,
        details={
            "status": job.status.value,
            "rows": job.total_rows,
            "created": job.created,
            "skipped": len({e["row"] for e in job.errors}),
        },
    )
    session.commit()
    return job


def _starter(session: DbSession, job: ImportJob) -> Actor:
    user = session.get(ConsoleUser, job.started_by) if job.started_by is not None else None
    return Actor.of(user) if user is not None else SYSTEM


def job_state(job: ImportJob, now: datetime | None = None) -> str:
    """running, done, failed, or interrupted (still marked running an hour after it started)."""
    if job.status is ImportStatus.RUNNING and (now or utcnow()) - job.started_at > INTERRUPTED_AFTER:
        return "interrupted"
    return job.status.value


def skipped_rows(job: ImportJob) -> int:
    """How many rows the job skipped because of errors."""
    return len({e["row"] for e in job.errors})
