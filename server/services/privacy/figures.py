"""Per-site privacy figures for the console: face opt-in, face fallback, pending deletions, stale consents."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.models import (
    AccessEvent,
    Alarm,
    AlarmKind,
    ConsentRecord,
    ErasureConfirmation,
    ErasureReceipt,
    FaceTemplate,
    Person,
    PersonStatus,
    Site,
    utcnow,
)
from server.services.privacy import privacy
from server.services.session import DbSession


@dataclass(frozen=True)
class SiteFigures:
    """What a manager and a privacy officer need to see about face entry at one site."""

    site: str
    face_enabled: bool
    face_model: str | None
    notice_version: int | None
    assessment_review_due: date | None
    assessment_overdue: bool
    people: int
    face_enrolled: int  # active people with a template in use (active consent)
    opt_in_rate: float | None  # face_enrolled / people
    declined: int
    stale_consents: int  # people whose consent went stale and who have not renewed or withdrawn
    face_attempts: int  # face decisions at the doors over the window
    face_fallbacks: int  # face attempts refused, after which the door asked for card, ID or code
    fallback_rate: float | None
    pending_deletions: int  # terminal confirmations still awaited
    overdue_deletions: int  # open erasure alarms
    window_days: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (dates as ISO strings)."""
        data = asdict(self)
        if self.assessment_review_due is not None:
            data["assessment_review_due"] = self.assessment_review_due.isoformat()
        return data


def site_figures(session: DbSession, site: Site, at: datetime | None = None, window_days: int = 30) -> SiteFigures:
    """The site's figures at `at`; door figures over the last `window_days`."""
    at = at or utcnow()
    active_people = and_(Person.site_id == site.id, Person.status == PersonStatus.ACTIVE)
    people = session.scalar(select(func.count()).select_from(Person).where(active_people)) or 0
    live_consent = and_(
        ConsentRecord.withdrawn_at.is_(None),
        ConsentRecord.stale_at.is_(None),
        or_(ConsentRecord.expires_at.is_(None), ConsentRecord.expires_at > at),
    )
    enrolled = (
        session.scalar(
            select(func.count(func.distinct(FaceTemplate.person_id)))
            .join(Person, Person.id == FaceTemplate.person_id)
            .join(ConsentRecord, ConsentRecord.id == FaceTemplate.consent_id)
            .where(active_people, live_consent)
        )
        or 0
    )
    declined = (
        session.scalar(
            select(func.count()).select_from(Person).where(active_people, Person.face_declined_at.is_not(None))
        )
        or 0
    )
    renewed = select(ConsentRecord.person_id).where(ConsentRecord.site_id == site.id, live_consent)
    stale = (
        session.scalar(
            select(func.count(func.distinct(ConsentRecord.person_id)))
            .join(Person, Person.id == ConsentRecord.person_id)
            .where(
                active_people,
                ConsentRecord.stale_at.is_not(None),
                ConsentRecord.withdrawn_at.is_(None),
                ConsentRecord.person_id.not_in(renewed),
            )
        )
        or 0
    )
    since = at - timedelta(days=window_days)
    by_decision = dict(
        session.execute(
            select(AccessEvent.decision, func.count())
            .where(
                AccessEvent.site_id == site.id,
                AccessEvent.occurred_at >= since,
                AccessEvent.method == EntryMethod.FACE,
                AccessEvent.decision.in_([Decision.GRANT, Decision.DENY]),
            )
            .group_by(AccessEvent.decision)
        ).all()
    )
    attempts = sum(by_decision.values())
    fallbacks = by_decision.get(Decision.DENY, 0)
    pending = (
        session.scalar(
            select(func.count())
            .select_from(ErasureConfirmation)
            .join(ErasureReceipt, ErasureReceipt.id == ErasureConfirmation.receipt_id)
            .where(ErasureReceipt.site_id == site.id, ErasureConfirmation.confirmed_at.is_(None))
        )
        or 0
    )
    overdue = (
        session.scalar(
            select(func.count())
            .select_from(Alarm)
            .where(Alarm.site_id == site.id, Alarm.kind == AlarmKind.ERASURE_OVERDUE, Alarm.resolved_at.is_(None))
        )
        or 0
    )
    notice = privacy.current_notice(session, site)
    assessment = privacy.current_assessment(session, site)
    review_due = assessment.review_due if assessment is not None else None
    return SiteFigures(
        site=site.code,
        face_enabled=site.face_enabled,
        face_model=site.face_model_id,
        notice_version=notice.version if notice is not None else None,
        assessment_review_due=review_due,
        assessment_overdue=review_due is not None and review_due < at.date(),
        people=people,
        face_enrolled=enrolled,
        opt_in_rate=round(enrolled / people, 4) if people else None,
        declined=declined,
        stale_consents=stale,
        face_attempts=attempts,
        face_fallbacks=fallbacks,
        fallback_rate=round(fallbacks / attempts, 4) if attempts else None,
        pending_deletions=pending,
        overdue_deletions=overdue,
        window_days=window_days,
    )
