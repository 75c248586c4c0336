"""Subject access: everything held about a person as JSON, as a page and from the CLI; never a template."""

from __future__ import annotations

import base64
import json
import re
import secrets
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import Window
from gatehouse_core.wire.messages import Decision, EntryMethod
from server.app import create_app
from server.cli.main import main
from server.config import load_server_config
from server.extensions import db
from server.models import (
    AccessEvent,
    AuditEntry,
    ConsentChannel,
    ConsoleRole,
    Person,
    utcnow,
)
from server.services.access import access, sites
from server.services.accounts import users
from server.services.audit import Actor
from server.services.face import consent
from server.services.face import templates as face_templates
from server.services.face.templates import unseal_vector
from server.services.people import credentials, people
from server.services.privacy import erasure, privacy
from server.services.privacy.subject_access import FORMAT, subject_access
from server.services.terminals import terminals
from server.services.visitors import passes
from server.state import state
from tests.conftest import PASSWORD, TEST_ACTOR, login
from tests.support.privacy import enable_face, notice_fields

FORBIDDEN_KEY = re.compile(r"sealed|vector|hash|secret|photo|image", re.IGNORECASE)
MODEL = "test-model-000000000000"


# ---- a person with everything the server can hold ----------------------------------------------------------------


@dataclass
class Subject:
    """Ids of what `populate` made, and every secret value that must never appear in an export."""

    person_id: int
    pseudonym: str
    site_id: int
    site_code: str
    door_id: int
    terminal_id: int
    terminal_ident: str
    group_id: int
    notice_id: int
    notice_sha256: str
    consent_ids: list[int]
    template_id: int
    erased_template_id: int
    credential_ids: list[int]
    pass_id: int
    user_id: int
    # Sealed and plain face templates, sealed app-code seed, the seed itself.
    blobs: list[bytes] = field(default_factory=list)
    # Credential lookup hashes and pass-code hashes (hex text).
    hex_digests: list[str] = field(default_factory=list)


def populate(keys: ServerKeys) -> Subject:
    """A face site with a door, a terminal, a group, and a resident with every kind of record."""
    now = utcnow()
    site = sites.create_site(db.session, TEST_ACTOR, code="maple", name="Maple Court")
    door = sites.save_door(db.session, TEST_ACTOR, site, "North gate", sites.DoorMethods(face=True))
    terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "North terminal", [door]).terminal
    group = access.create_group(
        db.session, TEST_ACTOR, site, "Residents", [door], [Window(day, 0, 1440) for day in range(7)]
    )
    person = people.create_person(
        db.session,
        TEST_ACTOR,
        site,
        full_name="Zhang Min",
        unit="3-201",
        date_of_birth=date(1980, 5, 17),
        phone="+86 138 0000 0000",
    )
    bystander = people.create_person(db.session, TEST_ACTOR, site, full_name="Someone Else")
    access.add_member(db.session, TEST_ACTOR, group, person)
    card = credentials.add_card(db.session, TEST_ACTOR, keys, person, "04A2B3C4D5E6F7")
    app_code, seed = credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, person)
    operator = users.create_user(db.session, TEST_ACTOR, "desk1", PASSWORD, ConsoleRole.MANAGER)
    enable_face(site, MODEL)
    notice = privacy.current_notice(db.session, site)
    assert notice is not None

    # An earlier template, sent to the terminal, erased when its consent was withdrawn; the terminal confirmed.
    first = consent.give_consent(
        db.session,
        Actor.of(operator),
        person,
        notice_sha256=notice.sha256,
        channel=ConsentChannel.DESK,
        at=now - timedelta(days=30),
    )
    old_vector = secrets.token_bytes(2048)
    old = face_templates.store_template(
        db.session, TEST_ACTOR, keys, person, first, MODEL, old_vector, now - timedelta(days=30)
    )
    old_sealed, old_id = old.sealed_vector, old.id
    erasure.record_holdings(db.session, terminal.id, [old_id])
    consent.withdraw_consent(db.session, TEST_ACTOR, person, ConsentChannel.APP, at=now - timedelta(days=20))
    erasure.confirm_items(db.session, terminal, [old_id], at=now - timedelta(days=19))

    # The template held now, on the server and on the terminal.
    second = consent.give_consent(
        db.session,
        TEST_ACTOR,
        person,
        notice_sha256=notice.sha256,
        channel=ConsentChannel.CONSOLE,
        at=now - timedelta(days=10),
    )
    vector = secrets.token_bytes(2048)
    template = face_templates.store_template(db.session, TEST_ACTOR, keys, person, second, MODEL, vector)
    erasure.record_holdings(db.session, terminal.id, [template.id])

    issued = passes.issue_pass(
        db.session, TEST_ACTOR, keys, person, "Wang Fang", now + timedelta(hours=1), now + timedelta(hours=5), [door], 2
    )
    for minutes, decision in ((30, Decision.GRANT), (20, Decision.DENY), (10, Decision.GRANT)):
        db.session.add(
            _event(site.id, terminal.id, door.id, person.pseudonym, now - timedelta(minutes=minutes), decision)
        )
    db.session.add(_event(site.id, terminal.id, door.id, bystander.pseudonym, now, Decision.GRANT))
    db.session.commit()

    assert unseal_vector(keys, person.id, MODEL, template.sealed_vector) == vector
    assert app_code.sealed_secret is not None and card.lookup_hash is not None
    return Subject(
        person_id=person.id,
        pseudonym=person.pseudonym,
        site_id=site.id,
        site_code=site.code,
        door_id=door.id,
        terminal_id=terminal.id,
        terminal_ident=terminal.ident,
        group_id=group.id,
        notice_id=notice.id,
        notice_sha256=notice.sha256,
        consent_ids=[first.id, second.id],
        template_id=template.id,
        erased_template_id=old_id,
        credential_ids=[card.id, app_code.id],
        pass_id=issued.visitor_pass.id,
        user_id=operator.id,
        blobs=[template.sealed_vector, vector, old_sealed, old_vector, app_code.sealed_secret, seed],
        hex_digests=[card.lookup_hash, issued.visitor_pass.code_hash],
    )


def _event(site_id: int, terminal_id: int, door_id: int, pseudonym: str, at: datetime, decision: Decision) -> Any:
    return AccessEvent(
        event_uid=str(uuid.uuid4()),
        site_id=site_id,
        terminal_id=terminal_id,
        door_id=door_id,
        person_pseudonym=pseudonym,
        method=EntryMethod.CARD,
        decision=decision,
        reason="ok" if decision is Decision.GRANT else "outside_schedule",
        occurred_at=at,
    )


# ---- leak checks, shared with test_no_template_export -----------------------------------------------------------


def encodings(blob: bytes) -> list[bytes]:
    """`blob` and aligned pieces of it, raw, hex (both cases), base64 and base64url (padded and not)."""
    # Pieces start at multiples of 3 bytes, so their base64 also appears inside the whole blob's base64.
    middle = len(blob) // 9 * 3
    pieces = [blob] if len(blob) <= 48 else [blob, blob[:24], blob[middle : middle + 24]]
    found: list[bytes] = []
    for piece in pieces:
        b64 = base64.b64encode(piece)
        url = base64.urlsafe_b64encode(piece)
        found += [piece, piece.hex().encode(), piece.hex().upper().encode(), b64, url, url.rstrip(b"=")]
    return found


def leak_needles(subject: Subject) -> list[bytes]:
    """Every encoding of every secret of `subject`."""
    needles = [n for blob in subject.blobs for n in encodings(blob)]
    for digest in subject.hex_digests:
        needles += [digest.encode(), digest.upper().encode(), *encodings(bytes.fromhex(digest))]
    return needles


def template_needles(subject: Subject) -> list[bytes]:
    """Every encoding of the sealed and plain face templates of `subject`."""
    return [n for blob in subject.blobs[:4] for n in encodings(blob)]


def assert_no_leak(body: bytes, needles: list[bytes], where: str) -> None:
    """No needle appears in `body`."""
    for needle in needles:
        if needle in body:
            # Not a bare assert: pytest would print the whole body, secret and all.
            pytest.fail(f"{where} contains secret material ({needle[:16]!r}...)")


def keys_of(value: Any) -> Iterator[str]:
    """Every dict key anywhere in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys_of(item)


# ---- the report --------------------------------------------------------------------------------------------------


@pytest.fixture
def subject(app, keys) -> Subject:
    return populate(keys)


def report_of(subject: Subject, **kw: Any) -> dict[str, Any]:
    return subject_access(db.session, db.session.get(Person, subject.person_id), **kw)


def test_report_holds_every_section(subject):
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = report_of(subject, at=at)
    assert list(report) == [
        "format",
        "generated_at",
        "controller",
        "person",
        "credentials",
        "access_groups",
        "face",
        "visitor_passes_hosted",
        "access_events",
        "access_events_total",
        "audit",
        "retention",
        "notes",
    ]
    assert report["format"] == FORMAT and report["generated_at"] == "2030-01-02T03:04:05+00:00"
    assert report["controller"] == {
        "site_name": "Maple Court",
        "site_code": "maple",
        "controller_name": notice_fields().controller,
        "contact": notice_fields().contact,
        "privacy_notice_version": 1,
        "privacy_notice_published_at": report["controller"]["privacy_notice_published_at"],
    }
    person = report["person"]
    assert person["id"] == subject.person_id and person["pseudonym"] == subject.pseudonym
    assert (person["full_name"], person["kind"], person["unit"], person["phone"], person["status"]) == (
        "Zhang Min",
        "resident",
        "3-201",
        "+86 138 0000 0000",
        "active",
    )
    assert person["date_of_birth"] == "1980-05-17" and person["moved_out_at"] is None
    assert datetime.fromisoformat(person["created_at"]).tzinfo is not None

    assert [(c["id"], c["kind"], c["status"]) for c in report["credentials"]] == [
        (subject.credential_ids[0], "card", "active"),
        (subject.credential_ids[1], "app_code", "active"),
    ]
    assert "keyed hashes" in report["notes"]["credentials"]
    assert report["access_groups"] == [{"id": subject.group_id, "name": "Residents", "doors": ["North gate"]}]
    assert report["retention"] == {
        "event_retention_days": 90,
        "visitor_retention_days": 30,
        "template_unused_days": 365,
    }


def test_report_face_section(subject):
    face = report_of(subject)["face"]
    first, second = face["consents"]
    assert [first["id"], second["id"]] == subject.consent_ids
    assert first["notice_version"] == 1 and first["notice_sha256"] == subject.notice_sha256
    assert (first["channel"], first["given_by"], first["operator"], first["withdrawal_channel"]) == (
        "desk",
        "self",
        "desk1",
        "app",
    )
    assert first["withdrawn_at"] is not None and second["withdrawn_at"] is None and second["operator"] is None
    assert second["stale_at"] is None and second["stale_reason"] is None

    (template,) = face["templates"]
    assert template["id"] == subject.template_id and template["model_id"] == MODEL
    assert template["held_on_server"] is True
    (held,) = template["held_on_terminals"]
    assert held["terminal"] == "North terminal" and held["terminal_ident"] == subject.terminal_ident
    assert held["site"] == "Maple Court" and held["sent_at"]

    (receipt,) = face["erasures"]
    assert receipt["template_id"] == subject.erased_template_id and receipt["model_id"] == MODEL
    assert receipt["reason"] == "consent_withdrawn" and receipt["complete"] is True
    (confirmation,) = receipt["confirmations"]
    assert confirmation["terminal"] == "North terminal" and confirmation["confirmed_by"] == "item_ack"
    assert confirmation["confirmed_at"] and receipt["held_on_terminals"] == []
    assert "never contains a template" in report_of(subject)["notes"]["face"]


def test_report_passes_events_and_audit(subject):
    report = report_of(subject)
    (visitor_pass,) = report["visitor_passes_hosted"]
    assert visitor_pass["id"] == subject.pass_id and visitor_pass["visitor_name"] == "Wang Fang"
    assert (visitor_pass["uses_allowed"], visitor_pass["uses_count"], visitor_pass["status"]) == (2, 0, "active")

    events = report["access_events"]
    assert report["access_events_total"] == 3 and len(events) == 3
    assert [e["decision"] for e in events] == ["grant", "deny", "grant"]  # newest first
    assert events == sorted(events, key=lambda e: e["occurred_at"], reverse=True)
    assert events[0]["door"] == "North gate" and events[0]["terminal"] == "North terminal"
    assert events[0]["method"] == "card" and events[1]["reason"] == "outside_schedule"
    assert "All 3 door events" in report["notes"]["access_events"]

    actions = [a["action"] for a in report["audit"]]
    assert actions[-1] == "person.create" and actions[0] == "template.add"  # newest first
    assert {"credential.add", "group.add_member", "template.delete"} <= set(actions)
    assert {a["actor_label"] for a in report["audit"]} == {"test", "desk1"}  # desk1 recorded the first consent
    # Another person's records stay out.
    assert len([a for a in report["audit"] if a["action"] == "person.create"]) == 1


def test_event_list_is_capped_with_the_total(subject):
    report = report_of(subject, event_limit=2)
    assert len(report["access_events"]) == 2 and report["access_events_total"] == 3
    assert "holds 3 door events" in report["notes"]["access_events"] and "newest 2" in report["notes"]["access_events"]


def test_report_never_holds_a_template_or_a_credential_secret(subject):
    report = report_of(subject)
    text = json.dumps(report)
    assert json.loads(text) == report  # plain JSON: no bytes, no datetimes
    assert_no_leak(text.encode(), leak_needles(subject), "the subject access JSON")
    assert [k for k in keys_of(report) if FORBIDDEN_KEY.search(k)] == []


def test_report_never_reads_secret_columns(subject):
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    db.session.expire_all()
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        report_of(subject)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert any("face_templates" in s for s in statements) and any("credentials" in s for s in statements)
    for column in ("sealed_vector", "lookup_hash", "sealed_secret", "code_hash"):
        assert not [s for s in statements if column in s], f"the report reads {column}"


def test_person_with_nothing_and_no_notice(app, make_site, make_person):
    person = make_person(make_site(), "Chen Jie")
    report = subject_access(db.session, person)
    assert report["controller"]["controller_name"] is None and report["controller"]["privacy_notice_version"] is None
    assert report["credentials"] == [] and report["access_groups"] == [] and report["visitor_passes_hosted"] == []
    assert report["face"] == {"consents": [], "templates": [], "erasures": []}
    assert report["access_events"] == [] and report["access_events_total"] == 0


# ---- the console -------------------------------------------------------------------------------------------------


def exports_audited(subject: Subject) -> list[tuple[str, str | None, dict[str, Any]]]:
    rows = db.session.execute(
        select(AuditEntry.actor_label, AuditEntry.target_id, AuditEntry.details, AuditEntry.site_id).where(
            AuditEntry.action == "person.subject_access"
        )
    ).all()
    assert all(row.site_id == subject.site_id for row in rows)
    return [(row.actor_label, row.target_id, row.details) for row in rows]


@pytest.mark.parametrize("role", [ConsoleRole.ADMIN, ConsoleRole.MANAGER])
def test_console_page_and_json_for_managers(client, subject, make_user, role):
    make_user("officer", role)
    login(client, "officer")
    url = f"/people/{subject.person_id}/subject-access"
    page = client.get(url)
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.text
    assert "Everything held about Zhang Min" in text and notice_fields().controller in text
    assert "North terminal" in text and subject.terminal_ident in text and "consent withdrawn" in text
    assert "17 May 1980" in text and "Wang Fang" in text and "keyed hashes" in text
    assert f'href="{url}.json"' in text
    assert_no_leak(page.data, leak_needles(subject), "the subject access page")

    download = client.get(f"{url}.json")
    assert download.status_code == 200 and download.mimetype == "application/json"
    disposition = download.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="subject-access-{subject.pseudonym}.json"'
    assert "Zhang" not in disposition
    report = json.loads(download.data)
    assert report["format"] == FORMAT and report["person"]["id"] == subject.person_id
    assert_no_leak(download.data, leak_needles(subject), "the subject access download")

    assert exports_audited(subject) == [
        ("officer", str(subject.person_id), {"format": "html"}),
        ("officer", str(subject.person_id), {"format": "json"}),
    ]


def test_console_refuses_guards_and_strangers(client, subject, make_user):
    url = f"/people/{subject.person_id}/subject-access"
    assert client.get(url).status_code in (302, 401)
    assert client.get(f"{url}.json").status_code in (302, 401)
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    assert client.get(url).status_code == 403
    assert client.get(f"{url}.json").status_code == 403
    assert exports_audited(subject) == []


def test_console_unknown_person_is_404(client, subject, make_user):
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    assert client.get("/people/999999/subject-access").status_code == 404
    assert client.get("/people/999999/subject-access.json").status_code == 404
    assert exports_audited(subject) == []


# ---- the CLI -----------------------------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli_config(tmp_path: Path, key_dir: Path) -> Iterator[tuple[Path, Subject]]:
    """A server config on an upgraded SQLite database holding `populate`'s records."""
    path = tmp_path / "server.toml"
    path.write_text(f'mode = "production"\ndatabase_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n')
    assert run("db", "upgrade", "--config", str(path))[0] == 0
    app = create_app(load_server_config(path))
    with app.app_context():
        made = populate(state().keys)
        db.session.remove()
        db.engine.dispose()
    yield path, made


def cli_exports(config: Path) -> list[tuple[str, str | None, dict[str, Any]]]:
    app = create_app(load_server_config(config))
    with app.app_context():
        rows = db.session.execute(
            select(AuditEntry.actor_label, AuditEntry.target_id, AuditEntry.details).where(
                AuditEntry.action == "person.subject_access"
            )
        ).all()
        db.session.remove()
        db.engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_cli_subject_access(cli_config, tmp_path):
    config, made = cli_config
    person = str(made.person_id)
    code, out, _err = run("subject-access", "--config", str(config), "--person", person)
    assert code == 0
    report = json.loads(out)
    assert report["person"]["pseudonym"] == made.pseudonym and report["face"]["templates"][0]["held_on_terminals"]
    assert_no_leak(out.encode(), leak_needles(made), "the CLI JSON")

    target = tmp_path / "report.html"
    code, out, err = run(
        "subject-access", "--config", str(config), "--person", person, "--format", "html", "--out", str(target)
    )
    assert code == 0 and out == "" and str(target) in err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    html = target.read_text()
    assert html.startswith("<!doctype html>") and "Everything held about Zhang Min" in html and "<style>" in html
    assert "Log out" not in html and ".json" not in html
    assert_no_leak(target.read_bytes(), leak_needles(made), "the CLI page")

    code, _out, err = run("subject-access", "--config", str(config), "--person", "999999")
    assert code == 2 and "no person with id 999999" in err
    assert cli_exports(config) == [("cli", person, {"format": "json"}), ("cli", person, {"format": "html"})]
