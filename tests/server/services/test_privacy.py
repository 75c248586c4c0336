"""A site's privacy set-up: versioned notice, impact assessment before face, stale consents, model change, figures."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.extensions import db
from server.link import event_ingest as events
from server.link import roster
from server.models import (
    Alarm,
    AlarmKind,
    AuditEntry,
    ConsentChannel,
    ErasureReason,
    ErasureReceipt,
    JournalEntry,
    JournalKind,
    Site,
    StaleReason,
)
from server.services.access import access
from server.services.errors import Conflict, DomainError
from server.services.face import consent
from server.services.face import count as face_count
from server.services.face import templates as face_templates
from server.services.privacy import erasure, privacy
from server.services.privacy.figures import site_figures
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR
from tests.support.privacy import ACTOR, enable_face, give_consent, notice_fields

MODEL = "test-model-000000000000"
VECTOR = bytes(range(256)) * 2


def refused(call: Callable[[], Any]) -> DomainError:
    with pytest.raises(DomainError) as info:
        call()
    db.session.rollback()
    return info.value


def last_kind(site: Site) -> JournalKind:
    kind = db.session.scalar(
        select(JournalEntry.kind).where(JournalEntry.site_id == site.id).order_by(JournalEntry.seq.desc()).limit(1)
    )
    assert kind is not None
    return kind


def assess(site: Site, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "assessed_on": date.today() - timedelta(days=3),
        "author": "Wang Fang, DPO",
        "review_due": date.today() + timedelta(days=362),
        "summary": "Optional face entry with card, ID and code at every face door.",
    }
    fields.update(changes)
    privacy.attach_assessment(db.session, ACTOR, site, **fields)
    db.session.commit()


def test_notice_has_every_part_and_says_face_is_optional(make_site: Callable[..., Site]) -> None:
    site = make_site()
    notice = privacy.publish_notice(db.session, ACTOR, site, notice_fields())
    db.session.commit()
    assert notice.version == 1 and notice.sha256 == privacy.notice_digest(notice.text)
    for part in ("Maple Court Property Management", "privacy@maple-court", "Where face templates are kept", "withdraw"):
        assert part in notice.text
    assert privacy.ALTERNATIVES in notice.text
    assert refused(lambda: privacy.publish_notice(db.session, ACTOR, site, notice_fields())).code == "notice_unchanged"
    assert refused(lambda: privacy.publish_notice(db.session, ACTOR, site, notice_fields(rights=" "))).code == (
        "notice_incomplete"
    )
    second = privacy.publish_notice(db.session, ACTOR, site, notice_fields(contact="dpo@maple-court.example"))
    assert second.version == 2 and privacy.current_notice(db.session, site) is second
    assert privacy.get_notice(db.session, site, 1).sha256 == notice.sha256


def test_face_cannot_be_enabled_without_an_impact_assessment_and_a_notice(make_site: Callable[..., Site]) -> None:
    site = make_site()
    assert refused(lambda: privacy.enable_face(db.session, ACTOR, site, MODEL)).code == "pia_missing"
    assess(site, assessed_on=date.today() - timedelta(days=400), review_due=date.today() - timedelta(days=1))
    assert refused(lambda: privacy.enable_face(db.session, ACTOR, site, MODEL)).code == "pia_review_overdue"
    assess(site)
    assert refused(lambda: privacy.enable_face(db.session, ACTOR, site, MODEL)).code == "notice_missing"
    privacy.publish_notice(db.session, ACTOR, site, notice_fields())
    privacy.enable_face(db.session, ACTOR, site, MODEL)
    db.session.commit()
    assert site.face_enabled and site.face_model_id == MODEL
    assert last_kind(site) is JournalKind.ROSTER_RESET
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.site_id == site.id)))
    assert {"privacy.assessment_attach", "privacy.notice_publish", "privacy.face_enable"} <= actions
    assert refused(lambda: privacy.enable_face(db.session, ACTOR, site, MODEL)).code == "face_already_on"
    privacy.disable_face(db.session, ACTOR, site)
    db.session.commit()
    assert not site.face_enabled and last_kind(site) is JournalKind.ROSTER_RESET


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"author": " "}, "pia_incomplete"),
        ({"summary": ""}, "pia_incomplete"),
        ({"review_due": date.today() - timedelta(days=5)}, "pia_review_order"),
        (
            {"assessed_on": date.today() + timedelta(days=1), "review_due": date.today() + timedelta(days=30)},
            "pia_future",
        ),
    ],
)
def test_bad_assessment_is_refused(make_site: Callable[..., Site], changes: dict[str, Any], code: str) -> None:
    site = make_site()
    assert refused(lambda: assess(site, **changes)).code == code


@pytest.fixture
def estate(make_site, make_door, make_person, keys: ServerKeys) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    site = enable_face(make_site(), MODEL)
    gate = make_door(site, "Gate", face=True)
    group = access.create_group(db.session, TEST_ACTOR, site, "Residents", [gate], ALWAYS.windows)
    alice, bob = make_person(site, "Alice"), make_person(site, "Bob")
    for person in (alice, bob):
        access.add_member(db.session, TEST_ACTOR, group, person)
    terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Gate terminal", [gate]).terminal
    db.session.commit()
    for person in (alice, bob):
        face_templates.store_template(db.session, TEST_ACTOR, keys, person, give_consent(person), MODEL, VECTOR)
    db.session.commit()
    return {"site": site, "gate": gate, "alice": alice, "bob": bob, "terminal": terminal}


def held_templates(estate: dict[str, Any], name: str) -> list[int]:
    """Template ids the gate terminal's roster would hold for a person."""
    site, person = estate["site"], estate[name]
    scope = roster.scope_of(db.session, estate["terminal"])
    data = roster.load_site(db.session, site)
    loaded = roster.load_people(db.session, site.id, [person.pseudonym])[person.pseudonym]
    record = roster.person_record(data, scope, loaded, roster.HashOnlySealer())
    assert record is not None  # still allowed in: face suspension never touches other methods
    return [t.id for t in record.templates]


def test_new_notice_makes_consents_stale_and_suspends_face_until_renewed(estate: dict[str, Any], keys) -> None:
    site, alice, bob = estate["site"], estate["alice"], estate["bob"]
    assert held_templates(estate, "alice") and held_templates(estate, "bob")
    privacy.publish_notice(db.session, ACTOR, site, notice_fields(purpose="Gates and the bicycle room."))
    db.session.commit()
    assert last_kind(site) is JournalKind.ROSTER_RESET
    assert all(c.stale_reason is StaleReason.NOTICE for p in (alice, bob) for c in p.consents)
    assert held_templates(estate, "alice") == [] and held_templates(estate, "bob") == []
    # Suspended, not erased: the templates stay on the server, and no erasure receipt is opened.
    assert len(alice.face_templates) == 1 and db.session.scalar(select(func.count()).select_from(ErasureReceipt)) == 0
    assert consent.face_status(db.session, alice).state is consent.FaceState.STALE
    # Enrolling again under the stale consent is refused with what to do.
    error = refused(
        lambda: face_templates.store_template(db.session, TEST_ACTOR, keys, alice, alice.consents[0], MODEL, VECTOR)
    )
    assert isinstance(error, Conflict) and error.code == "consent_stale"
    # Alice renews under the new notice: her same template is back in use; Bob's stays suspended.
    renewed = give_consent(alice)
    assert alice.face_templates[0].consent_id == renewed.id
    assert last_kind(site) is JournalKind.FACE_CONSENT
    assert held_templates(estate, "alice") == [alice.face_templates[0].id] and held_templates(estate, "bob") == []
    figures = site_figures(db.session, site)
    assert (figures.face_enrolled, figures.stale_consents, figures.notice_version) == (1, 1, 2)


def test_new_face_model_makes_consents_stale_and_erases_old_templates(estate: dict[str, Any], keys) -> None:
    site, alice = estate["site"], estate["alice"]
    erased = privacy.adopt_face_model(db.session, ACTOR, site, "next-model-111111111111")
    db.session.commit()
    assert erased == 2 and alice.face_templates == []
    reasons = set(db.session.scalars(select(ErasureReceipt.reason)))
    assert reasons == {ErasureReason.MODEL_CHANGED}
    assert all(c.stale_reason is StaleReason.FACE_MODEL for c in alice.consents)
    # A server still on the old model cannot add templates the site no longer uses.
    renewed = give_consent(alice)
    error = refused(lambda: face_templates.store_template(db.session, TEST_ACTOR, keys, alice, renewed, MODEL, VECTOR))
    assert error.code == "face_model_mismatch"
    face_templates.store_template(db.session, TEST_ACTOR, keys, alice, renewed, "next-model-111111111111", VECTOR)
    db.session.commit()
    assert held_templates(estate, "alice") == [alice.face_templates[0].id]
    assert refused(lambda: privacy.adopt_face_model(db.session, ACTOR, site, "next-model-111111111111")).code == (
        "same_face_model"
    )


def test_face_count_warns_as_it_nears_the_filing_threshold(estate: dict[str, Any]) -> None:
    assert face_count.FaceCount(enrolled=79_999).warning is None
    near = face_count.FaceCount(enrolled=90_500).warning
    assert near is not None and "90,500" in near and "(90% of the 100,000-person" in near
    over = face_count.FaceCount(enrolled=100_000).warning
    assert over is not None and "must file" in over
    # Two people enrolled against a threshold of 2: every step's alarm is raised once.
    count = face_count.check_face_count(db.session, threshold=2)
    face_count.check_face_count(db.session, threshold=2)
    db.session.commit()
    assert count.enrolled == 2
    refs = sorted(db.session.scalars(select(Alarm.ref).where(Alarm.kind == AlarmKind.FACE_COUNT)))
    assert refs == ["100%", "80%", "90%", "95%"]


def face_event(door: int, person: str | None, decision: Decision) -> EventRecord:
    return EventRecord(
        uid=str(uuid.uuid4()),
        door=door,
        method=EntryMethod.FACE,
        decision=decision,
        reason="granted" if decision is Decision.GRANT else "unknown",
        person=person,
        at=datetime.now(UTC) - timedelta(hours=1),
    )


def test_site_figures(estate: dict[str, Any], make_person) -> None:
    site, gate, alice = estate["site"], estate["gate"], estate["alice"]
    carol = make_person(site, "Carol")
    consent.decline_face(db.session, ACTOR, carol, ConsentChannel.DESK)
    make_person(site, "Dan")
    sender = events.sender_of(db.session, estate["terminal"])
    batch = [face_event(gate.id, alice.pseudonym, Decision.GRANT) for _ in range(3)]
    batch.append(face_event(gate.id, None, Decision.DENY))
    events.ingest(db.session, [(sender, batch)])
    # Bob's template reached the gate terminal; his withdrawal waits for that terminal to confirm.
    erasure.record_holdings(db.session, estate["terminal"].id, [t.id for t in estate["bob"].face_templates])
    consent.withdraw_consent(db.session, ACTOR, estate["bob"], ConsentChannel.APP)
    db.session.commit()
    figures = site_figures(db.session, site)
    assert (figures.people, figures.face_enrolled, figures.opt_in_rate) == (4, 1, 0.25)
    # Bob withdrew (which records a "no") and Carol declined.
    assert figures.declined == 2 and figures.stale_consents == 0
    assert (figures.face_attempts, figures.face_fallbacks, figures.fallback_rate) == (4, 1, 0.25)
    assert figures.pending_deletions == 1 and figures.overdue_deletions == 0
    erasure.confirm_items(
        db.session, estate["terminal"], [r.template_id for r in db.session.scalars(select(ErasureReceipt))]
    )
    db.session.commit()
    assert site_figures(db.session, site).pending_deletions == 0
    assert figures.face_enabled and figures.assessment_overdue is False
    assert figures.as_dict()["assessment_review_due"] == figures.assessment_review_due.isoformat()  # type: ignore[union-attr]
