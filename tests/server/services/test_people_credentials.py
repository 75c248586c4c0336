"""People and credentials: only keyed hashes or sealed secrets are stored; moving out erases faces."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from gatehouse_core.credential_hash import hash_card, site_hashing_key
from gatehouse_core.sealed import seal, unseal
from server.extensions import db
from server.models import (
    ConsentChannel,
    ConsentRecord,
    Credential,
    CredentialStatus,
    FaceTemplate,
    JournalEntry,
    JournalKind,
)
from server.services.errors import Conflict, RuleViolation
from server.services.people import credentials, people
from tests.conftest import TEST_ACTOR

CARD = "04:a2:b3:c4:d5:e6:f7"


def _all_text(app_db) -> str:
    """Every value in every table, as text, for 'is it stored in clear anywhere' checks."""
    chunks = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


def test_card_is_stored_only_as_a_site_keyed_hash(make_site, make_person, keys):
    site = make_site()
    person = make_person(site)
    credential = credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)
    db.session.commit()
    expected = hash_card(site_hashing_key(keys.credential_secret, site.code), "04A2B3C4D5E6F7")
    assert credential.lookup_hash == expected
    dump = _all_text(db).upper()
    assert "04A2B3C4D5E6F7" not in dump.replace(":", "")
    journal = db.session.scalars(select(JournalEntry).where(JournalEntry.kind == JournalKind.CREDENTIAL_ADD)).one()
    assert journal.payload["hash"] == expected


def test_same_card_cannot_belong_to_two_people_until_revoked(make_site, make_person, keys):
    site = make_site()
    first, second = make_person(site, "First"), make_person(site, "Second")
    card = credentials.add_card(db.session, TEST_ACTOR, keys, first, CARD)
    db.session.commit()
    with pytest.raises(Conflict):
        credentials.add_card(db.session, TEST_ACTOR, keys, second, "04A2B3C4D5E6F7")
    db.session.rollback()
    credentials.revoke(db.session, TEST_ACTOR, card)
    db.session.commit()
    credentials.add_card(db.session, TEST_ACTOR, keys, second, CARD)
    db.session.commit()
    states = sorted(c.status.value for c in db.session.scalars(select(Credential)))
    assert states == ["active", "revoked"]


@pytest.mark.parametrize("uid", ["", "xyz", "04A2B3", "04A2B3C4D5E6F7A8B9C0D1"])
def test_malformed_card_uid_is_refused_and_nothing_is_stored(make_site, make_person, keys, uid):
    person = make_person(make_site())
    with pytest.raises(RuleViolation):
        credentials.add_card(db.session, TEST_ACTOR, keys, person, uid)
    db.session.rollback()
    assert db.session.query(Credential).count() == 0


def test_id_document_is_hashed_and_app_code_seed_sealed(make_site, make_person, keys):
    person = make_person(make_site())
    doc = credentials.add_id_document(db.session, TEST_ACTOR, keys, person, "1101 0519 9001 0112 3X")
    credential, seed = credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, person)
    db.session.commit()
    assert doc.lookup_hash and "110105199001" not in _all_text(db)
    assert credential.sealed_secret is not None and seed not in credential.sealed_secret
    assert unseal(keys.template_key, credential.sealed_secret, credentials.app_code_context(person.id)) == seed
    # A new app code replaces the old one.
    again, _ = credentials.issue_app_code_secret(db.session, TEST_ACTOR, keys, person)
    db.session.commit()
    assert db.session.get(Credential, credential.id).status is CredentialStatus.REVOKED
    assert again.status is CredentialStatus.ACTIVE


def test_moved_out_person_gets_no_new_credentials(make_site, make_person, keys):
    person = make_person(make_site())
    people.move_out(db.session, TEST_ACTOR, person)
    db.session.commit()
    with pytest.raises(RuleViolation):
        credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)


def test_move_out_erases_templates_and_journals_deletion_before_status(make_site, make_person, keys):
    site = make_site()
    person = make_person(site)
    consent = ConsentRecord(person=person, site_id=site.id, notice_sha256="a" * 64, channel=ConsentChannel.CONSOLE)
    db.session.add(consent)
    db.session.flush()
    db.session.add(
        FaceTemplate(
            person=person, consent_id=consent.id, model_id="m", sealed_vector=seal(keys.template_key, b"v" * 16, "t")
        )
    )
    db.session.commit()
    people.move_out(db.session, TEST_ACTOR, person)
    db.session.commit()
    assert db.session.query(FaceTemplate).count() == 0
    kinds = [e.kind for e in db.session.scalars(select(JournalEntry).order_by(JournalEntry.seq))]
    assert kinds.index(JournalKind.TEMPLATE_DELETE) < kinds.index(JournalKind.PERSON_STATUS)
    with pytest.raises(Conflict):
        people.move_out(db.session, TEST_ACTOR, person)


@pytest.mark.parametrize("name", ["", "   "])
def test_person_needs_a_name(make_site, name):
    with pytest.raises(RuleViolation):
        people.create_person(db.session, TEST_ACTOR, make_site(), full_name=name)


def test_birth_date_in_future_is_refused(make_site):
    with pytest.raises(RuleViolation):
        people.create_person(
            db.session, TEST_ACTOR, make_site(), full_name="X", date_of_birth=date.today() + timedelta(days=1)
        )


def test_pseudonyms_are_unique_and_not_the_name(make_site, make_person):
    site = make_site()
    a, b = make_person(site, "Same Name"), make_person(site, "Same Name")
    assert a.pseudonym != b.pseudonym
    assert "Same" not in a.pseudonym


def test_audit_records_actions_without_credential_values(make_site, make_person, keys):
    person = make_person(make_site())
    credentials.add_card(db.session, TEST_ACTOR, keys, person, CARD)
    db.session.commit()
    rows = db.session.execute(text("SELECT action, details FROM audit_entries ORDER BY id")).all()
    actions = [r[0] for r in rows]
    assert actions[-1] == "credential.add" and "person.create" in actions
    assert "04A2" not in str(rows).upper()
