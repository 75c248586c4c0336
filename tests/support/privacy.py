"""Test helpers for the privacy set-up: a site with face switched on properly, and consent given properly."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from server.extensions import db
from server.models import ConsentChannel, ConsentRecord, Person, PrivacyNotice, Site
from server.services.audit import Actor
from server.services.face import consent
from server.services.privacy import privacy

ACTOR = Actor("test")
ADULT_BIRTHDAY = date(1990, 5, 17)


def notice_fields(**changes: str) -> privacy.NoticeFields:
    """A complete notice; keyword arguments replace parts of it."""
    parts = {
        "controller": "Maple Court Property Management Ltd.",
        "contact": "privacy@maple-court.example, +86 10 5555 0100",
        "purpose": "Opening the compound's gates for residents who choose face entry.",
        "method": "A face template (numbers, not a photo) is made from one enrollment photo, which is then dropped.",
        "storage": "Encrypted on the property server and on the gate terminals of the doors you may use.",
        "retention": "Until you withdraw, move out, or 365 days after your face last opened a door.",
        "rights": "You may see, correct and delete your data, and ask how it is used.",
        "withdrawal": "At the desk, in the console or in the app; your template is deleted everywhere.",
    }
    parts.update(changes)
    return privacy.NoticeFields(**parts)


def current_or_new_notice(site: Site) -> PrivacyNotice:
    """The site's notice, publishing a first one if it has none."""
    notice = privacy.current_notice(db.session, site)
    if notice is None:
        notice = privacy.publish_notice(db.session, ACTOR, site, notice_fields())
        db.session.flush()
    return notice


def enable_face(site: Site, model_id: str = "test-model-000000000000") -> Site:
    """Attach an assessment, publish a notice and switch face on, as a real site does."""
    today = date.today()
    privacy.attach_assessment(
        db.session,
        ACTOR,
        site,
        assessed_on=today - timedelta(days=10),
        author="Wang Fang, DPO",
        review_due=today + timedelta(days=355),
        summary="Face entry optional; templates encrypted; card, ID and code at every face door.",
    )
    current_or_new_notice(site)
    privacy.enable_face(db.session, ACTOR, site, model_id)
    db.session.commit()
    return site


def give_consent(person: Person, channel: ConsentChannel = ConsentChannel.DESK, **fields: Any) -> ConsentRecord:
    """Consent through the real service under the site's notice (an adult birthday if none is recorded)."""
    if person.date_of_birth is None:
        person.date_of_birth = ADULT_BIRTHDAY
    notice = current_or_new_notice(person.site)
    record = consent.give_consent(db.session, ACTOR, person, notice_sha256=notice.sha256, channel=channel, **fields)
    db.session.commit()
    return record


def consent_row(person: Person, channel: ConsentChannel = ConsentChannel.DESK, **fields: Any) -> ConsentRecord:
    """A consent record made directly under the site's notice, for states the service cannot produce
    (already withdrawn, expired, given long ago); an adult birthday if none is recorded."""
    if person.date_of_birth is None:
        person.date_of_birth = ADULT_BIRTHDAY
    notice = current_or_new_notice(person.site)
    record = ConsentRecord(
        person=person,
        site_id=person.site_id,
        notice_id=notice.id,
        notice_sha256=notice.sha256,
        channel=channel,
        **fields,
    )
    db.session.add(record)
    db.session.flush()
    return record
