"""The per-site change journal is written in the same transaction as the change (transactional outbox)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.extensions import db
from server.models import JournalEntry, JournalKind, PersonKind, Site
from server.services import journal
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.errors import Conflict
from server.services.people import people
from tests.conftest import TEST_ACTOR


def test_sequence_numbers_are_per_site_and_gap_free(make_site):
    a, b = make_site(), make_site()
    for _ in range(3):
        journal.append(db.session, a.id, JournalKind.GRANT, {})
    journal.append(db.session, b.id, JournalKind.GRANT, {})
    db.session.commit()
    assert [e.seq for e in journal.entries_after(db.session, a.id, 0)] == [1, 2, 3]
    assert [e.seq for e in journal.entries_after(db.session, b.id, 0)] == [1]
    assert [e.seq for e in journal.entries_after(db.session, a.id, 2)] == [3]


def test_a_failed_change_leaves_no_journal_entry(make_site, make_door):
    site = make_site()
    make_door(site, "Gate")
    before = db.session.scalar(select(Site.journal_seq).where(Site.id == site.id))
    with pytest.raises(Conflict):
        sites.save_door(db.session, TEST_ACTOR, site, "Gate", DoorMethods())
    db.session.rollback()
    assert db.session.scalar(select(Site.journal_seq).where(Site.id == site.id)) == before
    assert db.session.query(JournalEntry).filter_by(site_id=site.id).count() == before


def test_rolled_back_change_takes_its_entry_and_number_with_it(make_site):
    site = make_site()
    journal.append(db.session, site.id, JournalKind.GRANT, {"n": 1})
    db.session.commit()
    journal.append(db.session, site.id, JournalKind.GRANT, {"n": 2})
    db.session.rollback()
    entry = journal.append(db.session, site.id, JournalKind.GRANT, {"n": 3})
    db.session.commit()
    assert entry.seq == 2
    assert [e.payload["n"] for e in journal.entries_after(db.session, site.id, 0)] == [1, 3]


def test_concurrent_writers_get_distinct_numbers(make_site, app):
    site = make_site()
    site_id = site.id
    engine = db.engine
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(20):
                with Session(engine) as session, session.begin():
                    journal.append(session, site_id, JournalKind.GRANT, {})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seqs = [e.seq for e in journal.entries_after(db.session, site_id, 0, limit=500)]
    assert seqs == list(range(1, 81))


def test_a_change_of_kind_reaches_terminals_and_other_edits_do_not(make_site, make_person):
    # Terminals admit by kind under a lockdown and past the offline bound (staff only).
    site = make_site()
    person = make_person(site, "Li Wei")
    before = site.journal_seq
    people.update_person(db.session, TEST_ACTOR, person, unit="3-1201")
    db.session.commit()
    assert site.journal_seq == before
    people.update_person(db.session, TEST_ACTOR, person, kind=PersonKind.STAFF)
    db.session.commit()
    entry = db.session.scalars(select(JournalEntry).where(JournalEntry.site_id == site.id, JournalEntry.seq > before))
    assert [(e.kind, e.payload) for e in entry] == [
        (JournalKind.PERSON_STATUS, {"person": person.pseudonym, "kind": "staff"})
    ]
