"""The rules a face consent must meet, checked when it is given and again at every enrollment.

Kept apart from the consent service so the template store can check them without importing it.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from server.models import ConsentGiver, ConsentRecord, Person, Site, utcnow
from server.services.errors import Conflict, RuleViolation


def local_date(site: Site, at: datetime) -> date:
    """The calendar date at the site at instant `at`."""
    return at.astimezone(ZoneInfo(site.timezone)).date()


def age_on(born: date, day: date) -> int:
    """Completed years of age on `day`."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def is_minor(person: Person, at: datetime) -> bool | None:
    """Under the site's minor age at `at`; None if the date of birth is not recorded."""
    if person.date_of_birth is None:
        return None
    return age_on(person.date_of_birth, local_date(person.site, at)) < person.site.minor_age


def require_consent_rules(person: Person, consent: ConsentRecord, at: datetime) -> None:
    """The minor rules, checked when consent is given and again at every enrollment (people grow older)."""
    site = person.site
    minor = is_minor(person, at)
    if minor is None:
        raise RuleViolation(
            f"Record the person's date of birth first: people under {site.minor_age} need a guardian's consent, "
            "so face consent cannot be taken without it.",
            code="date_of_birth_needed",
        )
    if minor and site.no_face_for_minors:
        raise RuleViolation(
            f"This site does not enroll the faces of people under {site.minor_age} (the site option "
            "'no face enrollment for minors' is on). They enter by card, ID document or app code.",
            code="minor_face_off",
        )
    if minor and consent.given_by is not ConsentGiver.GUARDIAN:
        raise Conflict(
            f"This person is under {site.minor_age}: a parent or guardian must give the consent "
            "(their name and relationship are recorded).",
            code="guardian_consent_needed",
        )
    if not minor and consent.given_by is ConsentGiver.GUARDIAN:
        raise RuleViolation(
            f"This person is {site.minor_age} or older and gives consent themselves.", code="guardian_not_needed"
        )


def active_consent(person: Person, at: datetime | None = None) -> ConsentRecord | None:
    """The person's most recent consent that is active at `at` (given, not withdrawn, expired or stale)."""
    at = at or utcnow()
    active = [c for c in person.consents if c.is_active(at)]
    return max(active, key=lambda c: (c.given_at, c.id)) if active else None
