"""Retention: events, ended visitor passes and unused face templates go when their site says (both databases)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from pydantic import ValidationError
from sqlalchemy import func, select, update

from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.config import RetentionConfig, ServerConfig
from server.extensions import db
from server.link import event_ingest as events
from server.link.worker import Worker
from server.models import (
    AccessEvent,
    Alarm,
    AuditEntry,
    Door,
    ErasureReason,
    ErasureReceipt,
    FaceTemplate,
    JournalEntry,
    JournalKind,
    PassStatus,
    Person,
    PersonKind,
    Site,
    Terminal,
    VisitorPass,
    utcnow,
)
from server.models.access import pass_doors
from server.services.access import access
from server.services.face import templates as face_templates
from server.services.privacy import erasure, retention
from server.services.privacy.retention import PurgeKind
from server.services.terminals import terminals
from server.services.visitors import passes
from tests.conftest import TEST_ACTOR
from tests.support.privacy import consent_row, enable_face

MODEL = "test-model-000000000000"
VECTOR = bytes(range(256)) * 2
NOW = utcnow().replace(microsecond=0)


# ---- two sites with doors, terminals and people ------------------------------------------------------------------


@dataclass
class Estate:
    """Site "short" keeps events 30 days, site "long" the default 90; both take face at door A."""

    short: Site
    long: Site
    doors: dict[str, Door]
    terminals: dict[str, Terminal]
    people: dict[str, Person]


@pytest.fixture
def estate(
    make_site: Callable[..., Site], make_door: Callable[..., Door], make_person: Callable[..., Person]
) -> Estate:
    short, long = make_site("short"), make_site("long")
    short.event_retention_days = 30
    db.session.commit()
    for site in (short, long):
        enable_face(site, MODEL)
    doors = {"A": make_door(short, "A", face=True), "L": make_door(long, "L", face=True)}
    terms = {
        "TA": terminals.provision_terminal(db.session, TEST_ACTOR, short, "TA", [doors["A"]]).terminal,
        "TL": terminals.provision_terminal(db.session, TEST_ACTOR, long, "TL", [doors["L"]]).terminal,
    }
    group = access.create_group(db.session, TEST_ACTOR, short, "All", [doors["A"]], ALWAYS.windows)
    db.session.commit()
    people = {name: make_person(short, name.title()) for name in ("alice", "bob")}
    people["lena"] = make_person(long, "Lena")
    for person in (people["alice"], people["bob"]):
        access.add_member(db.session, TEST_ACTOR, group, person)
    db.session.commit()
    return Estate(short, long, doors, terms, people)


def event(door: Door, at: datetime, person: Person | None = None, **kw: Any) -> EventRecord:
    fields: dict[str, Any] = {"method": EntryMethod.CARD, "decision": Decision.GRANT, "reason": "ok"}
    fields.update(kw)
    return EventRecord(
        uid=str(uuid.uuid4()), door=door.id, person=None if person is None else person.pseudonym, at=at, **fields
    )


def ingest(terminal: Terminal, *records: EventRecord) -> None:
    events.ingest(db.session, [(events.sender_of(db.session, terminal), list(records))])
    db.session.commit()


def event_ages(site: Site) -> list[int]:
    """Days before NOW of the site's stored events, oldest first."""
    times = db.session.scalars(
        select(AccessEvent.occurred_at).where(AccessEvent.site_id == site.id).order_by(AccessEvent.occurred_at)
    )
    return [(NOW - t).days for t in times]


def purges() -> list[tuple[int | None, dict[str, Any]]]:
    db.session.expire_all()
    return [
        (e.site_id, e.details)
        for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.purge").order_by(AuditEntry.id)
        )
    ]


def count(entity: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(entity)) or 0


def face(person: Person, keys: ServerKeys, made_days_ago: int) -> FaceTemplate:
    """A stored face template, made `made_days_ago` days before NOW."""
    template = face_templates.store_template(
        db.session, TEST_ACTOR, keys, person, consent_row(person), MODEL, VECTOR, at=NOW
    )
    db.session.flush()
    db.session.execute(
        update(FaceTemplate)
        .where(FaceTemplate.id == template.id)
        .values(created_at=NOW - timedelta(days=made_days_ago))
    )
    db.session.commit()
    db.session.refresh(template)
    return template


# ---- access events ------------------------------------------------------------------------------------------------


def test_events_go_after_each_sites_own_window(estate: Estate) -> None:
    for name, door in (("TA", estate.doors["A"]), ("TL", estate.doors["L"])):
        ingest(estate.terminals[name], *(event(door, NOW - timedelta(days=d)) for d in (100, 60, 31, 29, 1)))
    report = retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert event_ages(estate.short) == [29, 1]
    assert event_ages(estate.long) == [60, 31, 29, 1]
    figures = {s.site_code: (s.events, s.passes, s.templates) for s in report.sites}
    assert figures == {"short": (3, 0, 0), "long": (1, 0, 0)}


def test_an_event_exactly_at_the_cutoff_is_kept(estate: Estate) -> None:
    ingest(estate.terminals["TA"], event(estate.doors["A"], NOW - timedelta(days=30)))
    retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert event_ages(estate.short) == [30]


@pytest.mark.parametrize("chunk_rows", [2, 3, 5, 100])
def test_events_are_deleted_in_chunks_and_audited_once(estate: Estate, chunk_rows: int) -> None:
    ingest(estate.terminals["TA"], *(event(estate.doors["A"], NOW - timedelta(days=40, minutes=m)) for m in range(6)))
    ingest(estate.terminals["TA"], event(estate.doors["A"], NOW - timedelta(days=2)))
    report = retention.run_retention(db.session, TEST_ACTOR, at=NOW, site=estate.short, chunk_rows=chunk_rows)
    assert [(s.site_code, s.events) for s in report.sites] == [("short", 6)]
    assert event_ages(estate.short) == [2]
    cutoff = (NOW - timedelta(days=30)).isoformat()
    assert purges() == [(estate.short.id, {"kind": "access_events", "count": 6, "cutoff": cutoff})]


def test_a_purge_that_fails_midway_audits_the_chunks_it_committed(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(estate.terminals["TA"], *(event(estate.doors["A"], NOW - timedelta(days=40, minutes=m)) for m in range(5)))
    counted = retention._rowcount
    calls = []

    def failing_second_chunk(result: object) -> int:
        calls.append(result)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return counted(result)

    monkeypatch.setattr(retention, "_rowcount", failing_second_chunk)
    with pytest.raises(RuntimeError, match="connection lost"):
        retention.run_retention(db.session, TEST_ACTOR, at=NOW, site=estate.short, chunk_rows=2)
    assert len(event_ages(estate.short)) == 3
    cutoff = (NOW - timedelta(days=30)).isoformat()
    assert purges() == [(estate.short.id, {"kind": "access_events", "count": 2, "cutoff": cutoff, "interrupted": True})]
    # The next run takes the rest, audited as such.
    monkeypatch.setattr(retention, "_rowcount", counted)
    retention.run_retention(db.session, TEST_ACTOR, at=NOW, site=estate.short, chunk_rows=2)
    assert event_ages(estate.short) == [] and [d["count"] for _, d in purges()] == [2, 3]


def test_one_site_only_leaves_the_others_alone(estate: Estate) -> None:
    for name, door in (("TA", estate.doors["A"]), ("TL", estate.doors["L"])):
        ingest(estate.terminals[name], event(door, NOW - timedelta(days=200)))
    report = retention.run_retention(db.session, TEST_ACTOR, at=NOW, site=estate.long)
    assert [s.site_code for s in report.sites] == ["long"]
    assert event_ages(estate.short) == [200] and event_ages(estate.long) == []


# ---- visitor passes -----------------------------------------------------------------------------------------------


def issue(estate: Estate, keys: ServerKeys, ends_days_ago: float, visitor: str = "Wang Fang") -> VisitorPass:
    """A pass for door A that ended `ends_days_ago` days before NOW (issued while it was running)."""
    end = NOW - timedelta(days=ends_days_ago)
    issued = passes.issue_pass(
        db.session,
        TEST_ACTOR,
        keys,
        estate.people["alice"],
        visitor,
        end - timedelta(hours=4),
        end,
        [estate.doors["A"]],
        now=end - timedelta(hours=5),
    )
    db.session.commit()
    return issued.visitor_pass


def pass_ids() -> set[int]:
    return set(db.session.scalars(select(VisitorPass.id)))


def test_passes_go_only_the_sites_visitor_period_after_they_end(estate: Estate, keys: ServerKeys) -> None:
    gone = issue(estate, keys, ends_days_ago=31)
    kept = issue(estate, keys, ends_days_ago=29)
    running = issue(estate, keys, ends_days_ago=-1)
    gone_id = gone.id
    report = retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert [(s.site_code, s.passes) for s in report.sites] == [("long", 0), ("short", 1)]
    assert pass_ids() == {kept.id, running.id}
    # The doors of the pass went with it (ON DELETE CASCADE; SQLite only with foreign keys on).
    assert db.session.scalar(select(func.count()).where(pass_doors.c.pass_id == gone_id)) == 0


@pytest.mark.parametrize("status", [PassStatus.EXPIRED, PassStatus.USED_UP, PassStatus.REVOKED, PassStatus.ACTIVE])
def test_a_pass_goes_whatever_its_status_once_its_window_is_that_long_past(
    estate: Estate, keys: ServerKeys, status: PassStatus
) -> None:
    ended = issue(estate, keys, ends_days_ago=45)
    ended_id = ended.id
    if status is PassStatus.EXPIRED:
        passes.expire_passes(db.session, NOW)
    else:
        ended.status = status
    db.session.commit()
    before = db.session.scalar(select(Site.journal_seq).where(Site.id == estate.short.id)) or 0
    retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert ended_id not in pass_ids()
    journalled = [
        (e.kind, e.payload)
        for e in db.session.scalars(
            select(JournalEntry).where(JournalEntry.site_id == estate.short.id, JournalEntry.seq > before)
        )
    ]
    # Terminals that were never told the pass ended are told now; an expired pass was already dropped.
    expected = [] if status is PassStatus.EXPIRED else [(JournalKind.PASS_REVOKE, {"pass": ended_id, "ended": True})]
    assert journalled == expected


def test_events_of_a_purged_pass_stay_without_the_link(estate: Estate, keys: ServerKeys) -> None:
    estate.short.event_retention_days = 90
    db.session.commit()
    ended = issue(estate, keys, ends_days_ago=40)
    ingest(
        estate.terminals["TA"],
        event(estate.doors["A"], NOW - timedelta(days=40, hours=1), method=EntryMethod.VISITOR_CODE, pass_id=ended.id),
    )
    retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    db.session.expire_all()
    (kept,) = db.session.scalars(select(AccessEvent))
    assert kept.pass_id is None and kept.method is EntryMethod.VISITOR_CODE


def test_the_visitor_period_may_be_zero(estate: Estate, keys: ServerKeys) -> None:
    estate.short.visitor_retention_days = 0
    db.session.commit()
    ended, running = issue(estate, keys, ends_days_ago=0.01).id, issue(estate, keys, ends_days_ago=-0.01).id
    retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert pass_ids() == {running} and ended not in pass_ids()


# ---- face templates -----------------------------------------------------------------------------------------------


def face_grant(estate: Estate, person: Person, at: datetime, terminal: str = "TA", **kw: Any) -> None:
    door = estate.doors["A" if terminal == "TA" else "L"]
    fields: dict[str, Any] = {"method": EntryMethod.FACE, "decision": Decision.GRANT}
    fields.update(kw)
    ingest(estate.terminals[terminal], event(door, at, person, **fields))


def last_matched(template_id: int) -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(select(FaceTemplate.last_matched_at).where(FaceTemplate.id == template_id))


def test_face_grants_move_last_matched_forward_only(estate: Estate, keys: ServerKeys) -> None:
    alice, bob = estate.people["alice"], estate.people["bob"]
    mine, theirs = face(alice, keys, 5), face(bob, keys, 5)
    face_grant(estate, alice, NOW - timedelta(days=3))
    assert last_matched(mine.id) == NOW - timedelta(days=3) and last_matched(theirs.id) is None
    # Several in one batch: the latest counts; a late, older event does not move it back.
    ingest(
        estate.terminals["TA"],
        *(event(estate.doors["A"], NOW - timedelta(days=d), alice, method=EntryMethod.FACE) for d in (2.5, 1, 1.5)),
    )
    assert last_matched(mine.id) == NOW - timedelta(days=1)
    face_grant(estate, alice, NOW - timedelta(days=2))
    assert last_matched(mine.id) == NOW - timedelta(days=1)


@pytest.mark.parametrize("case", ["card_grant", "face_deny", "no_person", "redelivered", "other_sites_terminal"])
def test_only_new_face_grants_at_the_persons_site_count_as_use(estate: Estate, keys: ServerKeys, case: str) -> None:
    alice = estate.people["alice"]
    template = face(alice, keys, 5)
    if case == "card_grant":
        face_grant(estate, alice, NOW, method=EntryMethod.CARD)
    elif case == "face_deny":
        face_grant(estate, alice, NOW, decision=Decision.DENY, reason="no_match")
    elif case == "no_person":
        ingest(estate.terminals["TA"], event(estate.doors["A"], NOW, method=EntryMethod.FACE))
    elif case == "redelivered":
        first = event(estate.doors["A"], NOW - timedelta(days=1), alice, method=EntryMethod.FACE)
        ingest(estate.terminals["TA"], first)
        db.session.execute(update(FaceTemplate).values(last_matched_at=None))
        db.session.commit()
        ingest(estate.terminals["TA"], first)
    else:
        face_grant(estate, alice, NOW, terminal="TL")
    assert last_matched(template.id) is None


def test_unused_templates_are_erased_with_a_receipt_and_a_journal_entry(estate: Estate, keys: ServerKeys) -> None:
    alice, bob = estate.people["alice"], estate.people["bob"]
    unused, used = face(alice, keys, 400), face(bob, keys, 400)
    unused_id, used_id = unused.id, used.id
    erasure.record_holdings(db.session, estate.terminals["TA"].id, [unused_id, used_id])
    db.session.commit()
    face_grant(estate, bob, NOW - timedelta(days=10))
    report = retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert {s.site_code: s.templates for s in report.sites} == {"short": 1, "long": 0}
    assert set(db.session.scalars(select(FaceTemplate.id))) == {used_id}
    (receipt,) = db.session.scalars(select(ErasureReceipt))
    assert (receipt.template_id, receipt.reason, receipt.person_pseudonym) == (
        unused_id,
        ErasureReason.RETENTION,
        alice.pseudonym,
    )
    assert [c.terminal_id for c in receipt.confirmations] == [estate.terminals["TA"].id]
    entry = db.session.scalar(
        select(JournalEntry).where(JournalEntry.site_id == estate.short.id, JournalEntry.seq == receipt.journal_seq)
    )
    assert entry is not None and entry.kind is JournalKind.TEMPLATE_DELETE and entry.payload["template"] == unused_id


def test_a_template_never_matched_counts_from_when_it_was_made(estate: Estate, keys: ServerKeys) -> None:
    old, young = face(estate.people["alice"], keys, 366), face(estate.people["bob"], keys, 364)
    old_id = old.id
    retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert set(db.session.scalars(select(FaceTemplate.id))) == {young.id}
    assert old_id not in set(db.session.scalars(select(FaceTemplate.id)))


def test_the_sites_template_period_is_honoured(estate: Estate, keys: ServerKeys) -> None:
    estate.short.template_unused_days = 30
    db.session.commit()
    face(estate.people["alice"], keys, 31)
    face(estate.people["lena"], keys, 31)
    report = retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert {s.site_code: s.templates for s in report.sites} == {"short": 1, "long": 0}
    assert [t.person_id for t in db.session.scalars(select(FaceTemplate))] == [estate.people["lena"].id]


# ---- audit, idempotence, the worker -------------------------------------------------------------------------------


def test_every_purge_is_audited_without_personal_data_and_a_second_run_does_nothing(
    estate: Estate, keys: ServerKeys
) -> None:
    ingest(estate.terminals["TA"], event(estate.doors["A"], NOW - timedelta(days=31), estate.people["alice"]))
    ingest(estate.terminals["TL"], event(estate.doors["L"], NOW - timedelta(days=91), estate.people["lena"]))
    issue(estate, keys, ends_days_ago=31, visitor="Zhang Visitor")
    face(estate.people["bob"], keys, 400)
    first = retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert first.removed == 4
    audited = purges()
    cut = {days: (NOW - timedelta(days=days)).isoformat() for days in (30, 90, 365)}
    assert sorted(audited, key=lambda a: (a[0] or 0, a[1]["kind"])) == sorted(
        [
            (estate.short.id, {"kind": PurgeKind.EVENTS.value, "count": 1, "cutoff": cut[30]}),
            (estate.short.id, {"kind": PurgeKind.PASSES.value, "count": 1, "cutoff": cut[30]}),
            (estate.short.id, {"kind": PurgeKind.TEMPLATES.value, "count": 1, "cutoff": cut[365]}),
            (estate.long.id, {"kind": PurgeKind.EVENTS.value, "count": 1, "cutoff": cut[90]}),
        ],
        key=lambda a: (a[0] or 0, a[1]["kind"]),
    )
    text = json.dumps([details for _, details in audited])
    for secret in ("Zhang", "Alice", "Bob", "Lena", estate.people["bob"].pseudonym):
        assert secret not in text
    entries_before, audit_before, journal_before = count(AccessEvent), count(AuditEntry), count(JournalEntry)
    second = retention.run_retention(db.session, TEST_ACTOR, at=NOW)
    assert second.removed == 0 and [(s.events, s.passes, s.templates) for s in second.sites] == [(0, 0, 0)] * 2
    assert (count(AccessEvent), count(AuditEntry), count(JournalEntry)) == (
        entries_before,
        audit_before,
        journal_before,
    )


def test_visitor_people_are_left_alone(estate: Estate, make_person: Callable[..., Person]) -> None:
    # Nothing links a visitor person to the passes they came on, so retention has no end of visit to count from.
    visitor = make_person(estate.short, "Old Visitor", kind=PersonKind.VISITOR)
    retention.run_retention(db.session, TEST_ACTOR, at=NOW + timedelta(days=3650))
    assert db.session.get(Person, visitor.id) is not None


def test_the_worker_runs_retention_and_the_alarm_check_when_due(app: Flask, estate: Estate, keys: ServerKeys) -> None:
    ingest(estate.terminals["TA"], event(estate.doors["A"], utcnow() - timedelta(days=31)))
    template = face(estate.people["alice"], keys, 1)
    erasure.record_holdings(db.session, estate.terminals["TA"].id, [template.id])
    receipt = face_templates.delete_template(
        db.session, TEST_ACTOR, estate.people["alice"], template, ErasureReason.MANAGER
    )
    receipt.erased_on_server_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    worker = Worker(app)
    due = {"prune": float("inf"), "erasures": 0.0, "retention": 0.0, "offline": float("inf")}
    worker._housekeeping(due)
    assert due["erasures"] > 0 and due["retention"] > 0 and due["prune"] == float("inf")
    db.session.expire_all()
    assert event_ages(estate.short) == []
    (alarm,) = db.session.scalars(select(Alarm))
    assert alarm.ref == str(receipt.id)
    assert {
        a.actor_label for a in db.session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purge"))
    } == {"retention"}


# ---- config -------------------------------------------------------------------------------------------------------


def test_retention_config_fields_are_described_and_defaulted() -> None:
    for name, field in RetentionConfig.model_fields.items():
        assert field.description, f"RetentionConfig.{name} has no description"
    assert ServerConfig.model_fields["retention"].description
    config = parse_config(ServerConfig, {"database_url": "sqlite:///x.db", "key_dir": "/k"})
    assert (config.retention.interval_minutes, config.retention.alarm_check_minutes) == (60, 15)


@pytest.mark.parametrize(
    "bad",
    [{"interval_minutes": 0}, {"interval_minutes": 2000}, {"alarm_check_minutes": 0}, {"chunk_rows": 10}, {"days": 3}],
)
def test_bad_retention_config_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetentionConfig.model_validate(bad)
