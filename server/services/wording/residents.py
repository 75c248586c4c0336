"""Service refusals (DomainError) in words for a resident using the phone app, by the stable code.

The services word their refusals for staff ("this person ..."); the app speaks to the resident ("you ...") and
says where else to go. The phone-app API answers in English, so these sentences are not in the console's
catalogue, and this module needs no Flask-Babel.
"""

from __future__ import annotations

from server.services.errors import DomainError

OTHER_WAYS = "Face entry is optional: your card, ID document and app code open the same doors."

# One sentence per code; {age} is the site's minor age, {other_ways} the reminder above.
MESSAGES: dict[str, str] = {
    "guardian_consent_needed": "You are under {age}: only a parent or guardian can consent to face entry for "
    "you, at the management office. {other_ways}",
    "minor_face_off": "This site does not use face entry for people under {age}. {other_ways}",
    "date_of_birth_needed": "Face consent needs your date of birth on record (people under "
    "{age} need a guardian's consent): ask the management office to add it. {other_ways}",
    "inactive": "Your residence at this site is not active, so face entry is not available.",
    "already_consented": "Your face consent is already active.",
    "notice_changed": "The privacy notice has changed since you read it: fetch it again, read it and consent "
    "to the current version.",
    "no_consent": "You have no active face consent: read the privacy notice and consent first.",
    "consent_stale": "Your consent was given under an earlier privacy notice or face model: read the current "
    "notice and consent again.",
    "consent_active": "You have consented to face entry; withdraw your consent instead.",
    "already_declined": "You have already declined face entry.",
    # What to fix is for the operator's log; the resident learns where else to go.
    "face_unavailable": "Face enrollment from the app is not available right now: ask the management office. "
    "{other_ways}",
}


def for_resident(exc: DomainError, *, minor_age: int) -> str | None:
    """The resident's sentence for a refusal at a site with this minor age, or None to keep the service's words."""
    template = MESSAGES.get(exc.code)
    return None if template is None else template.format(age=minor_age, other_ways=OTHER_WAYS)
