"""Face consent: separate, under the current notice, a guardian's for minors, declined once, withdrawn in one call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys
from server.extensions import db
from server.link import roster
from server.models import (
    AuditEntry,
    ConsentChannel,
    ConsentGiver,
    ErasureReason,
    ErasureReceipt,
    JournalEntry,
    JournalKind,
    Person,
    PersonStatus,
    Site,
    utcnow,
)
from server.services.errors import Conflict, DomainError, RuleViolation
from server.services.face import consent
from server.services.face import templates as face_templates
from server.services.face.consent import FaceState
from server.services.people import people
from server.services.privacy import privacy
from tests.conftest import TEST_ACTOR
from tests.support.privacy import ACTOR, consent_row, enable_face, give_consent, notice_fields

MODEL = "test-model-000000000000"
VECTOR = bytes(range(256)) * 2


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return enable_face(make_site())


def years_ago(years: int, days: int = 0) -> date:
    """A birthday `years` ago counted from today at the site (Asia/Shanghai; the test sites' zone)."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    try:
        then = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        then = today.replace(year=today.year - years, day=28)
    return then - timedelta(days=days)


def journal_kinds(site: Site) -> list[JournalKind]:
    return list(db.session.scalars(select(JournalEntry.kind).where(JournalEntry.site_id == site.id)))


def store(keys: ServerKeys, person: Person, record: Any) -> Any:
    template = face_templates.store_template(db.session, TEST_ACTOR, keys, person, record, MODEL, VECTOR)
    db.session.commit()
    return template


def refused(call: Callable[[], Any]) -> DomainError:
    with pytest.raises(DomainError) as info:
        call()
    db.session.rollback()
    return info.value


def test_face_is_off_by_default_for_sites_and_people(make_site: Callable[..., Site], make_person) -> None:
    site = make_site()
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    assert site.face_enabled is False
    status = consent.face_status(db.session, person)
    assert (status.state, status.offer) == (FaceState.OFF, False)
    error = refused(lambda: give_consent(person))
    assert error.code == "face_disabled"


def test_consent_is_recorded_with_notice_channel_operator_and_audit(site: Site, make_person) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    assert consent.face_status(db.session, person).state is FaceState.NOT_ASKED
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    record = give_consent(person, ConsentChannel.APP, expires_at=utcnow() + timedelta(days=365))
    assert (record.notice_id, record.notice_sha256, record.channel) == (notice.id, notice.sha256, ConsentChannel.APP)
    assert record.given_by is ConsentGiver.SELF and record.guardian_name is None
    assert consent.face_status(db.session, person).state is FaceState.CONSENTED
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "consent.give"))
    assert entry is not None and entry.target_id == str(person.id)
    assert entry.details["notice_version"] == notice.version and "Li Wei" not in str(entry.details)
    assert refused(lambda: give_consent(person)).code == "already_consented"


def test_consent_must_echo_the_current_notice(site: Site, make_person) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    old = privacy.current_notice(db.session, site)
    assert old is not None
    privacy.publish_notice(db.session, ACTOR, site, notice_fields(contact="dpo@maple-court.example"))
    db.session.commit()
    error = refused(
        lambda: consent.give_consent(
            db.session, ACTOR, person, notice_sha256=old.sha256, channel=ConsentChannel.CONSOLE
        )
    )
    assert isinstance(error, Conflict) and error.code == "notice_changed" and error.http_status == 409
    assert person.consents == []


def test_an_echoed_version_must_name_the_current_notice(site: Site, make_person) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    current = privacy.current_notice(db.session, site)
    assert current is not None
    error = refused(
        lambda: consent.give_consent(
            db.session,
            ACTOR,
            person,
            notice_sha256=current.sha256,
            notice_version=current.version + 1,
            channel=ConsentChannel.APP,
        )
    )
    assert error.code == "notice_changed" and person.consents == []
    consent.give_consent(
        db.session,
        ACTOR,
        person,
        notice_sha256=current.sha256,
        notice_version=current.version,
        channel=ConsentChannel.APP,
    )
    assert len(person.consents) == 1


def test_date_of_birth_is_needed_to_tell_minors(site: Site, make_person) -> None:
    person = make_person(site, "No Birthday")
    notice = privacy.current_notice(db.session, site)
    assert notice is not None
    error = refused(
        lambda: consent.give_consent(
            db.session, ACTOR, person, notice_sha256=notice.sha256, channel=ConsentChannel.DESK
        )
    )
    assert error.code == "date_of_birth_needed"


def test_no_face_for_minors_is_on_by_default(site: Site, make_person) -> None:
    child = make_person(site, "Xiao Ming", date_of_birth=years_ago(9))
    assert site.no_face_for_minors is True and site.minor_age == 14
    assert consent.face_status(db.session, child).state is FaceState.MINOR_NOT_OFFERED
    error = refused(
        lambda: give_consent(
            child, given_by=ConsentGiver.GUARDIAN, guardian_name="Li Na", guardian_relationship="mother"
        )
    )
    assert error.code == "minor_face_off"


def test_minor_needs_a_named_guardian_where_the_site_allows_minors(site: Site, make_person) -> None:
    site.no_face_for_minors = False
    db.session.commit()
    # One day short of 14 in the site's time zone: still a minor.
    child = make_person(site, "Xiao Ming", date_of_birth=years_ago(14, days=-1))
    error = refused(lambda: give_consent(child))
    assert isinstance(error, Conflict) and error.code == "guardian_consent_needed"
    error = refused(lambda: give_consent(child, given_by=ConsentGiver.GUARDIAN, guardian_name="Li Na"))
    assert error.code == "guardian_unnamed"
    record = give_consent(child, given_by=ConsentGiver.GUARDIAN, guardian_name="Li Na", guardian_relationship="mother")
    assert (record.given_by, record.guardian_name, record.guardian_relationship) == (
        ConsentGiver.GUARDIAN,
        "Li Na",
        "mother",
    )
    # Fourteen today: consents themselves; a guardian's consent is refused for them.
    teen = make_person(site, "Zhang Yu", date_of_birth=years_ago(14))
    error = refused(
        lambda: give_consent(teen, given_by=ConsentGiver.GUARDIAN, guardian_name="Li Na", guardian_relationship="aunt")
    )
    assert error.code == "guardian_not_needed"
    assert give_consent(teen).given_by is ConsentGiver.SELF


def test_minor_without_guardian_consent_cannot_be_enrolled(site: Site, make_person, keys: ServerKeys) -> None:
    site.no_face_for_minors = False
    child = make_person(site, "Xiao Ming", date_of_birth=years_ago(10))
    # A consent row in the child's own name (say, imported from an older system): enrollment still refuses it.
    own = consent_row(child)
    db.session.commit()
    error = refused(lambda: store(keys, child, own))
    assert error.code == "guardian_consent_needed"
    assert child.face_templates == []
    # With the site's default back on, not even a guardian's consent enrolls a child.
    guardian = consent_row(child, given_by=ConsentGiver.GUARDIAN, guardian_name="Li Na", guardian_relationship="mother")
    db.session.commit()
    assert store(keys, child, guardian).person_id == child.id
    site.no_face_for_minors = True
    db.session.commit()
    assert refused(lambda: store(keys, child, guardian)).code == "minor_face_off"


def test_declining_is_recorded_and_not_asked_again_unless_they_ask(site: Site, make_person) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    consent.decline_face(db.session, ACTOR, person, ConsentChannel.DESK)
    db.session.commit()
    status = consent.face_status(db.session, person)
    assert (status.state, status.offer) == (FaceState.DECLINED, False)
    assert refused(lambda: consent.decline_face(db.session, ACTOR, person, ConsentChannel.DESK)).code == (
        "already_declined"
    )
    # They ask after all: consent clears the decline.
    give_consent(person)
    assert person.face_declined_at is None
    assert consent.face_status(db.session, person).state is FaceState.CONSENTED
    assert refused(lambda: consent.decline_face(db.session, ACTOR, person, ConsentChannel.DESK)).code == (
        "consent_active"
    )


@pytest.mark.parametrize("channel", [ConsentChannel.DESK, ConsentChannel.APP, ConsentChannel.CONSOLE])
def test_withdrawal_is_one_call_and_erases_with_receipts(
    site: Site, make_person, keys: ServerKeys, channel: ConsentChannel
) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    given = give_consent(person, channel)
    template = store(keys, person, given)
    receipts = consent.withdraw_consent(db.session, ACTOR, person, channel)
    db.session.commit()
    assert [r.template_id for r in receipts] == [template.id]
    assert receipts[0].reason is ErasureReason.CONSENT_WITHDRAWN
    assert person.face_templates == []
    assert given.withdrawn_at is not None and given.withdrawal_channel is channel
    assert journal_kinds(site)[-1] is JournalKind.TEMPLATE_DELETE
    # Withdrawing is a "no" too: not offered again, and the same call twice is a clear conflict.
    status = consent.face_status(db.session, person)
    assert (status.state, status.offer) == (FaceState.DECLINED, False)
    assert refused(lambda: consent.withdraw_consent(db.session, ACTOR, person, channel)).code == "no_consent"
    assert refused(lambda: store(keys, person, given)).code == "no_consent"


def test_manager_delete_and_deactivation_erase_with_their_reasons(site: Site, make_person, keys: ServerKeys) -> None:
    alice = make_person(site, "Alice", date_of_birth=years_ago(30))
    bob = make_person(site, "Bob", date_of_birth=years_ago(40))
    store(keys, alice, give_consent(alice))
    store(keys, bob, give_consent(bob))
    consent.erase_face(db.session, ACTOR, alice)
    people.deactivate(db.session, ACTOR, bob)
    db.session.commit()
    reasons = dict(db.session.execute(select(ErasureReceipt.person_id, ErasureReceipt.reason)).all())
    assert reasons == {alice.id: ErasureReason.MANAGER, bob.id: ErasureReason.DEACTIVATED}
    assert bob.status is PersonStatus.SUSPENDED and bob.face_templates == []
    # The manager's delete leaves consent in place: Alice may enroll again.
    assert consent.face_status(db.session, alice).state is FaceState.CONSENTED
    assert refused(lambda: consent.erase_face(db.session, ACTOR, alice)).code == "no_template"


def test_expired_consent_takes_the_template_off_terminals(site: Site, make_person, keys: ServerKeys) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    record = give_consent(person, expires_at=utcnow() + timedelta(days=1))
    store(keys, person, record)
    people_now = roster.load_people(db.session, site.id, [person.pseudonym])
    assert people_now[person.pseudonym].templates
    later = roster.load_people(db.session, site.id, [person.pseudonym], at=utcnow() + timedelta(days=2))
    assert later[person.pseudonym].templates == []


def test_consent_counts_only_for_the_person_it_names(site: Site, make_person, keys: ServerKeys) -> None:
    alice = make_person(site, "Alice", date_of_birth=years_ago(30))
    bob = make_person(site, "Bob", date_of_birth=years_ago(30))
    alices = give_consent(alice)
    error = refused(lambda: store(keys, bob, alices))
    assert isinstance(error, Conflict) and error.code == "no_consent"
    assert db.session.scalar(select(func.count()).select_from(ErasureReceipt)) == 0


def test_inactive_person_cannot_consent(site: Site, make_person) -> None:
    person = make_person(site, "Li Wei", date_of_birth=years_ago(30))
    people.move_out(db.session, ACTOR, person)
    db.session.commit()
    error = refused(lambda: give_consent(person))
    assert isinstance(error, RuleViolation) and error.code == "inactive"
