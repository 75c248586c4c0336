"""A site's privacy set-up for face entry: the versioned notice, the impact assessment, switching face on and
off, moving to another face model, and the count of enrolled faces against the filing threshold.

A new notice version or a new face model makes every consent of the site stale: face matching stops for those
people (their templates leave the terminals' rosters) until they renew; card, ID and code keep working.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update

from server.models import (
    ConsentRecord,
    ErasureReason,
    FaceTemplate,
    JournalKind,
    Person,
    PrivacyAssessment,
    PrivacyNotice,
    Site,
    StaleReason,
    utcnow,
)
from server.services import audit, journal
from server.services.audit import Actor
from server.services.errors import Conflict, NotFound, RuleViolation
from server.services.face import templates as face_templates
from server.services.privacy import notice_text
from server.services.privacy.notice_text import NoticeDraft
from server.services.session import DbSession

log = logging.getLogger(__name__)

ALTERNATIVES = (
    "Face entry is optional. Key card, ID document and app code open every door that face opens, "
    "and declining or withdrawing changes nothing else about your access."
)

_MAX_FIELD = {"controller": 200, "contact": 200}
_MAX_TEXT = 4000


@dataclass(frozen=True)
class NoticeFields:
    """What a face-entry privacy notice must say (PIPL art. 17, 2025 Measures art. 6)."""

    controller: str
    contact: str
    purpose: str
    method: str
    storage: str
    retention: str
    rights: str
    withdrawal: str


_HEADINGS = {
    "controller": "Who is responsible",
    "contact": "Contact",
    "purpose": "Purpose",
    "method": "How it works",
    "storage": "Where face templates are kept",
    "retention": "How long they are kept",
    "rights": "Your rights",
    "withdrawal": "How to withdraw",
}


def render_notice(site: Site, version: int, notice: NoticeFields) -> str:
    """The exact text shown to people; its SHA-256 is what their consent records."""
    lines = [f"Face entry at {site.name}: privacy notice, version {version}", ""]
    for name, heading in _HEADINGS.items():
        lines += [f"{heading}:", getattr(notice, name).strip(), ""]
    lines.append(ALTERNATIVES)
    return "\n".join(lines) + "\n"


def notice_digest(text: str) -> str:
    """SHA-256 of a notice text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def current_notice(session: DbSession, site: Site) -> PrivacyNotice | None:
    """The site's newest notice version, if it has published one."""
    return session.scalar(
        select(PrivacyNotice).where(PrivacyNotice.site_id == site.id).order_by(PrivacyNotice.version.desc()).limit(1)
    )


def _check_legacy(notice: NoticeFields) -> None:
    for item in fields(NoticeFields):
        value = getattr(notice, item.name).strip()
        if not value:
            raise RuleViolation(
                f"The privacy notice needs its '{_HEADINGS[item.name].lower()}' part ({item.name}).",
                code="notice_incomplete",
            )
        if len(value) > _MAX_FIELD.get(item.name, _MAX_TEXT):
            raise RuleViolation(
                f"The notice's {item.name} is longer than {_MAX_FIELD.get(item.name, _MAX_TEXT)} characters.",
                code="notice_too_long",
            )


def _render(site: Site, version: int, notice: NoticeFields | NoticeDraft) -> str:
    if isinstance(notice, NoticeDraft):
        return notice_text.render(site.name, version, notice)
    return render_notice(site, version, notice)


def _columns(notice: NoticeFields | NoticeDraft) -> dict[str, str]:
    """The notice's one-part-per-column copy; for a draft, the English of the matching sections (the published
    text, in both languages, stays what people read and what consent names)."""
    if isinstance(notice, NoticeFields):
        return {item.name: getattr(notice, item.name).strip() for item in fields(NoticeFields)}
    return notice_text.columns(notice)


def publish_notice(session: DbSession, actor: Actor, site: Site, notice: NoticeFields | NoticeDraft) -> PrivacyNotice:
    """Publish a new notice version; every consent given under an older one becomes stale.

    A NoticeDraft publishes the notice in English and Chinese; NoticeFields (the command line's file) an English
    one. Either way consent names the version and the SHA-256 of the exact text.
    """
    if isinstance(notice, NoticeDraft):
        notice_text.check(notice)
    else:
        _check_legacy(notice)
    previous = current_notice(session, site)
    version = 1 if previous is None else previous.version + 1
    text = _render(site, version, notice)
    if previous is not None and _render(site, previous.version, notice) == previous.text:
        raise Conflict(f"This text is already version {previous.version} of the notice.", code="notice_unchanged")
    published = PrivacyNotice(
        site_id=site.id,
        version=version,
        text=text,
        sha256=notice_digest(text),
        published_by=actor.label,
        **_columns(notice),
    )
    session.add(published)
    session.flush()
    stale = mark_consents_stale(session, site, StaleReason.NOTICE) if previous is not None else 0
    audit.record(
        session,
        actor,
        "privacy.notice_publish",
        "site",
        site.id,
        site_id=site.id,
        details={"version": version, "sha256": published.sha256, "consents_made_stale": stale},
    )
    return published


def readings(notice: PrivacyNotice) -> dict[str, notice_text.NoticeReading]:
    """A published notice by language, read from its exact text; empty for an English-only notice."""
    return notice_text.parse(notice.text) or {}


# An English-only notice's parts, as sections of the next version (what it did not say starts from the starter).
_LEGACY_SECTIONS = {
    "purpose": "purpose",
    "collected": "method",
    "storage": "storage",
    "retention": "retention",
    "rights": "rights",
    "withdrawal": "withdrawal",
}


def next_draft(session: DbSession, site: Site) -> NoticeDraft:
    """Where the next version starts: the current one, or the starter texts (marked where only the site can say
    what to write) for what the site has not written yet."""
    starter = notice_text.starter_draft(template_days=site.template_unused_days, event_days=site.event_retention_days)
    current = current_notice(session, site)
    if current is None:
        return starter
    parsed = notice_text.parse(current.text)
    if parsed is not None:
        return notice_text.draft_of(parsed)
    sections = {key: dict(texts) for key, texts in starter.sections.items()}
    for key, column in _LEGACY_SECTIONS.items():
        sections[key]["en"] = getattr(current, column)
    return notice_text.NoticeDraft(current.controller, current.contact, sections)


def mark_consents_stale(session: DbSession, site: Site, reason: StaleReason, at: datetime | None = None) -> int:
    """Make every live consent of a site stale; terminals drop the templates they covered. Returns how many."""
    at = at or utcnow()
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(ConsentRecord)
        .where(ConsentRecord.site_id == site.id, ConsentRecord.withdrawn_at.is_(None), ConsentRecord.stale_at.is_(None))
        .values(stale_at=at, stale_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    count = result.rowcount
    if count:
        # One snapshot per terminal instead of one delta per person: a notice touches everyone at once.
        journal.append(session, site.id, JournalKind.ROSTER_RESET, {"reason": f"consents_stale:{reason.value}"})
        log.info("site %s: %d consent(s) stale (%s)", site.code, count, reason.value)
    return count


def attach_assessment(
    session: DbSession,
    actor: Actor,
    site: Site,
    *,
    assessed_on: date,
    author: str,
    review_due: date,
    summary: str,
) -> PrivacyAssessment:
    """Attach a privacy impact assessment (PIPL art. 55) to a site."""
    author, summary = author.strip(), summary.strip()
    if not author or not summary:
        raise RuleViolation(
            "An impact assessment needs its author and a summary of its findings.", code="pia_incomplete"
        )
    if review_due <= assessed_on:
        raise RuleViolation("The review date must come after the assessment date.", code="pia_review_order")
    if assessed_on > date.today():
        raise RuleViolation("The assessment date lies in the future.", code="pia_future")
    assessment = PrivacyAssessment(
        site_id=site.id,
        assessed_on=assessed_on,
        author=author,
        review_due=review_due,
        summary=summary,
        attached_by=actor.label,
    )
    session.add(assessment)
    session.flush()
    audit.record(
        session,
        actor,
        "privacy.assessment_attach",
        "site",
        site.id,
        site_id=site.id,
        details={
            "assessment": assessment.id,
            "assessed_on": assessed_on.isoformat(),
            "review_due": review_due.isoformat(),
        },
    )
    return assessment


def current_assessment(session: DbSession, site: Site) -> PrivacyAssessment | None:
    """The most recently attached impact assessment of a site."""
    return session.scalar(
        select(PrivacyAssessment)
        .where(PrivacyAssessment.site_id == site.id)
        .order_by(PrivacyAssessment.attached_at.desc(), PrivacyAssessment.id.desc())
        .limit(1)
    )


def face_blockers(session: DbSession, site: Site, today: date | None = None) -> list[RuleViolation]:
    """What stops face entry from being switched on at a site, in the order to fix it (empty when ready)."""
    today = today or date.today()
    blockers = []
    assessment = current_assessment(session, site)
    if assessment is None:
        blockers.append(
            RuleViolation(
                "Face entry cannot be switched on before a privacy impact assessment is attached to the site "
                "(`gatehouse privacy attach-assessment`).",
                code="pia_missing",
            )
        )
    elif assessment.review_due < today:
        blockers.append(
            RuleViolation(
                f"The site's impact assessment was due for review on {assessment.review_due.isoformat()}; "
                "attach the reviewed assessment first.",
                code="pia_review_overdue",
            )
        )
    if current_notice(session, site) is None:
        blockers.append(
            RuleViolation(
                "Publish the site's face-entry privacy notice first: nobody can consent without it.",
                code="notice_missing",
            )
        )
    return blockers


def enable_face(session: DbSession, actor: Actor, site: Site, model_id: str, today: date | None = None) -> None:
    """Switch face entry on for a site: only with a current impact assessment and a published notice."""
    blockers = face_blockers(session, site, today)
    if blockers:
        raise blockers[0]
    if site.face_enabled and site.face_model_id == model_id:
        raise Conflict("Face entry is already on for this site.", code="face_already_on")
    if site.face_model_id is not None and site.face_model_id != model_id:
        adopt_face_model(session, actor, site, model_id)
    site.face_model_id = model_id
    site.face_enabled = True
    journal.append(session, site.id, JournalKind.ROSTER_RESET, {"reason": "face_enabled"})
    audit.record(session, actor, "privacy.face_enable", "site", site.id, site_id=site.id, details={"model": model_id})


def disable_face(session: DbSession, actor: Actor, site: Site) -> None:
    """Switch face entry off: terminals drop every template at once; the server keeps them until erased."""
    if not site.face_enabled:
        raise Conflict("Face entry is already off for this site.", code="face_already_off")
    site.face_enabled = False
    journal.append(session, site.id, JournalKind.ROSTER_RESET, {"reason": "face_disabled"})
    audit.record(session, actor, "privacy.face_disable", "site", site.id, site_id=site.id)


def adopt_face_model(session: DbSession, actor: Actor, site: Site, model_id: str) -> int:
    """Move a site to another face model: consents become stale and templates of other models are erased.

    Returns the number of templates erased. Templates of another model cannot be matched by the new one, and
    consent was given for processing with the old one, so people renew and re-enroll.
    """
    if site.face_model_id == model_id:
        raise Conflict(f"The site already uses face model {model_id}.", code="same_face_model")
    previous = site.face_model_id
    site.face_model_id = model_id
    stale = mark_consents_stale(session, site, StaleReason.FACE_MODEL)
    erased = 0
    old = session.scalars(
        select(FaceTemplate)
        .join(Person, Person.id == FaceTemplate.person_id)
        .where(Person.site_id == site.id, FaceTemplate.model_id != model_id)
    ).all()
    for template in old:
        face_templates.delete_template(session, actor, template.person, template, ErasureReason.MODEL_CHANGED)
        erased += 1
    audit.record(
        session,
        actor,
        "privacy.face_model_change",
        "site",
        site.id,
        site_id=site.id,
        details={"from": previous, "to": model_id, "consents_made_stale": stale, "templates_erased": erased},
    )
    return erased


def get_notice(session: DbSession, site: Site, version: int | None = None) -> PrivacyNotice:
    """A notice version of a site (the current one by default)."""
    if version is None:
        found = current_notice(session, site)
    else:
        found = session.scalar(
            select(PrivacyNotice).where(PrivacyNotice.site_id == site.id, PrivacyNotice.version == version)
        )
    if found is None:
        raise NotFound(f"Site {site.code} has no privacy notice{'' if version is None else f' version {version}'}.")
    return found


def notice_versions(session: DbSession, site: Site, limit: int = 100) -> list[PrivacyNotice]:
    """A site's notice versions, newest first."""
    return list(
        session.scalars(
            select(PrivacyNotice)
            .where(PrivacyNotice.site_id == site.id)
            .order_by(PrivacyNotice.version.desc())
            .limit(limit)
        )
    )


def live_consents(session: DbSession, site: Site) -> int:
    """Consents a new notice version or face model would make stale (neither withdrawn nor already stale)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ConsentRecord)
            .where(
                ConsentRecord.site_id == site.id,
                ConsentRecord.withdrawn_at.is_(None),
                ConsentRecord.stale_at.is_(None),
            )
        )
        or 0
    )
