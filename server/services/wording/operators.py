"""Service refusals (DomainError) in words for staff at the console, in their language, by the stable code."""

from __future__ import annotations

from typing import Any

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from gatehouse_core.face.quality import QualityReason
from gatehouse_core.pass_token import EARLIEST_TIME, LATEST_TIME, MAX_DOORS, MAX_USES
from server.services.accounts.users import MIN_PASSWORD_LENGTH
from server.services.errors import DomainError
from server.services.integrations.api_keys import NAME_MAX as API_KEY_NAME_MAX
from server.services.operations.alarms import COMMENT_MAX as ALARM_COMMENT_MAX
from server.services.people.csv_import import MAX_ROWS
from server.services.people.people import NAME_MAX, PHONE_MAX, UNIT_MAX
from server.services.terminals.commands import REASON_MAX
from server.services.visitors.passes import MAX_PASS_DAYS

# The language the services write their messages in: a page in it shows the service's own words.
SOURCE_LANGUAGE = "en"

# Refusals only the residents' phone-app API meets (its tokens, a resident's own password or sign-in code, their
# own devices): the console never causes them, and the app shows them in its own words.
APP_ONLY_CODES = frozenset(
    {
        "token_invalid",
        "token_expired",
        "session_revoked",
        "account_disabled",
        "refresh_invalid",
        "refresh_reused",
        "refresh_expired",
        "wrong_password",
        "bad_code",
    }
)
# Codes a person using the console cannot cause or fix (a programming or API-client mistake): the service's own
# words are shown. tests/server/services/wording/test_operators.py holds every other code raised in server/services
# to a sentence here. not_found is NotFound's generic code: the service's own words say what is missing.
INTERNAL_CODES = frozenset({"unknown_field", "naive_time", "not_found"}) | APP_ONLY_CODES

# One sentence per code, saying what to do. Where the service's message names values (a person, a door, an age,
# a model), the sentence here is written without them: the English page keeps showing the service's own message.
MESSAGES: dict[str, Any] = {
    # alarms, door modes, the offline bound
    "alarm_acknowledged": _l("This alarm has already been acknowledged."),
    "alarm_resolved": _l("This alarm has already been resolved."),
    "comment_required": _l("Say what was done about the alarm."),
    "comment_too_long": _l("Keep the comment under %(n)d characters.", n=ALARM_COMMENT_MAX),
    "bad_scope": _l("Choose doors or a door group, not both."),
    "no_door": _l("No such door at this site."),
    "no_override": _l("This lockdown or emergency release has already been lifted, or does not exist."),
    "reason_missing": _l("Give a reason; it is kept in the audit log."),
    "bad_offline_alarm": _l("The offline alarm must come after 1 to 10,080 minutes (a week)."),
    "bad_max_offline_hours": _l("The offline bound must be 1 to 8,760 hours (a year)."),
    # integrations
    "name_required": _l("Give it a name: the system that will use it."),
    "key_name_too_long": _l("Keep the key's name under %(n)d characters.", n=API_KEY_NAME_MAX),
    "no_scope": _l("Give the key at least one scope."),
    "unknown_scope": _l("Choose the key's scopes from the list."),
    "bad_url": _l("Give the receiver's full URL, starting with https://."),
    "https_required": _l("Use https:// (plain http only to this machine)."),
    "url_credentials": _l("Leave the user name and password out of the URL; the signature proves who is sending."),
    "no_topic": _l("Choose at least one kind of event to send."),
    "unknown_topic": _l("Choose the kinds of event from the list."),
    # people and credentials
    "inactive": _l("This person has moved out or is suspended: this can only be done for people active at the site."),
    "not_active": _l("Only an active person can be deactivated."),
    "already_moved_out": _l("This person has already moved out."),
    "site_fixed": _l("A person cannot move to another site: move them out here and add them at the new site."),
    "birth_date_conflicts_with_consent": _l(
        "This date of birth does not fit the person's face consent (a minor needs a guardian's consent). "
        "Withdraw the face consent first, then change the date of birth."
    ),
    "credential_taken": _l(
        "This card or ID document is already registered to someone at this site; revoke it there first."
    ),
    "bad_card": _l(
        "Enter the card number as printed on the card or shown by a desk reader: 8, 14 or 20 hexadecimal digits "
        "(0-9, A-F)."
    ),
    "bad_id_document": _l("Enter the ID document number as 5 to 32 letters and digits."),
    "other_site": _l("Choose a terminal at the person's site."),
    "no_command": _l("No such command."),
    "door_not_served": _l("This terminal does not serve that door. Choose one of the doors listed."),
    # face consent and templates
    "face_disabled": _l(
        "Face entry is switched off at this site, so there is nothing to consent to or enroll. "
        "Card, ID document and app code keep working."
    ),
    "notice_missing": _l("Publish the site's privacy notice first: nobody can consent to face entry without it."),
    "notice_changed": _l(
        "The privacy notice shown is not the current one. Show the person the current notice and ask again."
    ),
    "bad_expiry": _l("The consent's expiry lies in the past; choose a later date or leave it empty."),
    "guardian_unnamed": _l("Guardian consent needs the guardian's name and relationship."),
    "already_consented": _l("This person's face consent is already active."),
    "no_consent": _l(
        "This person has no active face consent. To use face entry, record their (or their guardian's) consent first."
    ),
    "consent_active": _l("This person has consented; withdraw the consent instead."),
    "already_declined": _l("This person has already declined face entry."),
    "no_template": _l("This person has no face template to delete."),
    "date_of_birth_needed": _l(
        "Record the person's date of birth first: minors need a guardian's consent, so face consent cannot be "
        "taken without it."
    ),
    "minor_face_off": _l("This site does not enroll the faces of minors. They enter by card, ID document or app code."),
    "guardian_consent_needed": _l(
        "This person is a minor: a parent or guardian must give the consent (their name and relationship are recorded)."
    ),
    "guardian_not_needed": _l("This person is an adult and gives consent themselves; choose “the person”."),
    "consent_stale": _l(
        "This person's face consent was given under an earlier privacy notice or face model: show them the "
        "current notice and record their consent again."
    ),
    "consent_without_notice": _l(
        "This consent does not name the privacy notice that was shown: record the consent again."
    ),
    "face_model_mismatch": _l(
        "This server makes face templates with a different face model than the site uses. Ask the administrator "
        "to configure the site's model, or to move the site to the new model (every consent then has to be "
        "renewed)."
    ),
    "bad_template": _l("The face template is empty or too large. Try another photo."),
    "face_unavailable": _l(
        "This server cannot make face templates (face entry is not configured or its model cannot be loaded). "
        "Ask the administrator. Card, ID document and app code keep working."
    ),
    # doors, groups, holidays, terminals
    "face_needs_alternatives": _l(
        "A door that accepts face must also accept card, ID document and app code, so that nobody has to give "
        "their face to get in. Turn them on, or turn face off for this door."
    ),
    "no_entry_method": _l("Choose at least one way through this door."),
    "door_name_missing": _l("Give the door a name."),
    "duplicate_door": _l("This site already has a door with this name; choose another name."),
    "bad_windows": _l("Some time windows overlap; fix the marked ones and save again."),
    "group_name_missing": _l("Give the group a name (up to 120 characters)."),
    "duplicate_group": _l("This site already has an access group with this name; choose another name."),
    "foreign_door": _l(
        "Some of the chosen doors belong to another site (or, for a visitor, are doors the host may not use). "
        "Choose only the doors offered."
    ),
    "foreign_group": _l("A person can only join access groups of their own site."),
    "holiday_name_missing": _l("Give the holiday a name (up to 120 characters)."),
    "duplicate_holiday": _l("This day is already a holiday at this site."),
    "holiday_gone": _l("This holiday has already been removed."),
    "no_doors": _l("A terminal must serve at least one door."),
    "duplicate_terminal": _l("This site already has a terminal with this name; choose another name."),
    "no_terminal": _l("No terminal with this id. It may have been removed."),
    "reason_required": _l("Say why the door is being opened."),
    "reason_too_long": _l("Keep the reason under %(n)d characters.", n=REASON_MAX),
    # sites and console users
    "bad_site_code": _l("A site code has 1 to 64 characters of a-z, 0-9 and '-', and does not start or end with '-'."),
    "duplicate_site": _l("A site with this code already exists; choose another code."),
    "bad_username": _l("A username has 3 to 64 letters, digits, '.', '_' or '-'."),
    "weak_password": _l("A password needs at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
    "duplicate_user": _l("A user with this name already exists; choose another username."),
    # visitor passes
    "bad_visitor_name": _l("Give the visitor's name (up to 200 characters)."),
    "bad_doors": _l("Choose 1 to %(n)d doors for the visitor.", n=MAX_DOORS),
    "bad_window": _l(
        "Check the pass times: a pass must start before it ends, end in the future and last at most %(n)d days.",
        n=MAX_PASS_DAYS,
    ),
    "bad_uses": _l("A pass allows 1 to %(n)d entries.", n=MAX_USES),
    "bad_day": _l(
        "Visitor passes fall between %(first)s and %(last)s; choose a day in between.",
        first=EARLIEST_TIME.date().isoformat(),
        last=LATEST_TIME.date().isoformat(),
    ),
    "codes_exhausted": _l("Too many live visitor passes to find a free code; revoke unused passes."),
    # people import
    "not_utf8": _l("The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again."),
    "no_header": _l("The file is empty: it needs a header row and one row per person."),
    "no_rows": _l("The file has a header but no rows, so there is nothing to import."),
    "too_many_rows": _l("The file has more than %(n)d rows. Split it into smaller files.", n=MAX_ROWS),
    "bad_csv": _l("The file is not valid CSV (check the quotes). Nothing was imported."),
    "unknown_column": _l(
        "The header has a column Gatehouse does not know. Use only the columns listed under “What the file must "
        "look like”."
    ),
    "duplicate_column": _l("A column is named twice in the header; keep only one of them."),
    "missing_column": _l(
        "The header lacks a required column; add the columns listed under “What the file must look like”."
    ),
    "site_gone": _l("A site was deleted during the import. Check the file and import the remaining rows again."),
    # privacy
    "notice_incomplete": _l("Every part of the notice must be filled in."),
    "notice_to_complete": _l(
        "This part still has starter text marked “to complete”: replace each marked part with this site's facts."
    ),
    "notice_too_long": _l("A part of the notice is too long; shorten it."),
    "notice_unchanged": _l("This text is the same as the current version. Change something before publishing."),
    "pia_incomplete": _l("An impact assessment needs its author and a summary of its findings."),
    "pia_review_order": _l("The review date must come after the assessment date."),
    "pia_future": _l("The assessment date lies in the future; enter the date it was made."),
    "pia_missing": _l("Attach a privacy impact assessment to this site first (see “Impact assessment” below)."),
    "pia_review_overdue": _l("The impact assessment is overdue for review: attach the reviewed assessment first."),
    "face_already_on": _l("Face entry is already on for this site."),
    "face_already_off": _l("Face entry is already off for this site."),
    "same_face_model": _l("The site already uses this face model."),
    "setting_out_of_range": _l("A setting is outside its allowed range; correct the marked field."),
    "bad_format": _l("A subject access report is made as JSON or HTML."),
    # the residents' phone app
    "visitor": _l("Visitors get passes for their visit, not the phone app."),
    "no_login": _l(
        "The app signs in with a username or the phone on file: give a username, or record the person's phone "
        "number first."
    ),
    "username_taken": _l("Another app account has this username; choose another."),
    "phone_taken": _l(
        "Another app account signs in with this phone number, so give this person a username to sign in with."
    ),
    "no_account": _l("The phone app was never turned on for this person."),
}

# PhotoRejected codes are photo_<reason>: the same advice as gatehouse_core.face.quality.ADVICE, translated.
# A person's fields, as the people form and the CSV import report them (per field, not as a flash).
PERSON_FIELD_MESSAGES: dict[str, Any] = {
    "name_missing": _l("Enter the person's full name."),
    "name_too_long": _l("Shorten the name to %(n)d characters or fewer.", n=NAME_MAX),
    "bad_kind": _l("Use resident, staff or visitor."),
    "kind_missing": _l("The kind is empty: write resident, staff or visitor."),
    "unit_too_long": _l("Shorten the unit to %(n)d characters or fewer.", n=UNIT_MAX),
    "bad_date": _l(
        "The date of birth must be a day that exists on the calendar, written YYYY-MM-DD (for example 1990-04-30)."
    ),
    "bad_date_of_birth": _l("The date of birth lies in the future; check the year."),
    "phone_too_long": _l("Shorten the phone number to %(n)d characters or fewer.", n=PHONE_MAX),
    "bad_phone": _l("Use only digits, spaces, +, -, ( ) and dots in the phone number."),
    "unknown_site": _l("No site has this code; check the site column."),
    "birth_date_conflicts_with_consent": _l(
        "This date of birth does not fit the person's face consent (a minor needs a guardian's consent). "
        "Withdraw the face consent first, then change the date of birth."
    ),
}

# A CSV file of people that cannot be read at all.
IMPORT_FILE_MESSAGES: dict[str, Any] = {
    # alarms, door modes, the offline bound
    "alarm_acknowledged": _l("This alarm has already been acknowledged."),
    "alarm_resolved": _l("This alarm has already been resolved."),
    "comment_required": _l("Say what was done about the alarm."),
    "comment_too_long": _l("Keep the comment under %(n)d characters.", n=ALARM_COMMENT_MAX),
    "bad_scope": _l("Choose doors or a door group, not both."),
    "no_door": _l("No such door at this site."),
    "no_override": _l("This lockdown or emergency release has already been lifted, or does not exist."),
    "reason_missing": _l("Give a reason; it is kept in the audit log."),
    "bad_offline_alarm": _l("The offline alarm must come after 1 to 10,080 minutes (a week)."),
    "bad_max_offline_hours": _l("The offline bound must be 1 to 8,760 hours (a year)."),
    # integrations
    "name_required": _l("Give it a name: the system that will use it."),
    "key_name_too_long": _l("Keep the key's name under %(n)d characters.", n=API_KEY_NAME_MAX),
    "no_scope": _l("Give the key at least one scope."),
    "unknown_scope": _l("Choose the key's scopes from the list."),
    "bad_url": _l("Give the receiver's full URL, starting with https://."),
    "https_required": _l("Use https:// (plain http only to this machine)."),
    "url_credentials": _l("Leave the user name and password out of the URL; the signature proves who is sending."),
    "no_topic": _l("Choose at least one kind of event to send."),
    "unknown_topic": _l("Choose the kinds of event from the list."),
    "not_utf8": _l("The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again."),
    "no_header": _l("The file is empty: it needs a header row and one row per person."),
    "no_rows": _l("The file has a header but no rows, so there is nothing to import."),
    "too_many_rows": _l("The file has more than %(n)d rows. Split it into smaller files.", n=MAX_ROWS),
    "bad_csv": _l("The file is not valid CSV (check the quotes). Nothing was imported."),
}

PHOTO_ADVICE: dict[QualityReason, Any] = {
    QualityReason.UNREADABLE: _l("The photo could not be read. Choose a JPEG, PNG or WebP photo of the face."),
    QualityReason.TOO_LARGE: _l("The photo is too large. Use a smaller photo."),
    QualityReason.NO_FACE: _l("No face was found. Take a photo of the face from the front, in good light."),
    QualityReason.SEVERAL_FACES: _l("More than one face is in the photo. Take a photo with only this person in it."),
    QualityReason.FACE_TOO_SMALL: _l("The face is too small. Come closer or crop the photo around the face."),
    QualityReason.BLURRY: _l("The photo is blurry. Hold the camera still, focus on the face and retake it."),
    QualityReason.NOT_FRONTAL: _l("The face is turned away. Look straight into the camera and retake the photo."),
    QualityReason.LOW_SCORE: _l(
        "The face is hard to see (shadow, cover or glare). Retake it in even light, uncovered."
    ),
}
MESSAGES.update({f"photo_{reason.value}": text for reason, text in PHOTO_ADVICE.items()})


def describe(exc: DomainError) -> str:
    """What the user is told about a refusal: the sentence for its code in their language, else the service's words.

    The services write English and name the values involved (a door, an age, a model), so an English page keeps
    the service's own message; other languages get the catalogue's sentence for the code.
    """
    locale = get_locale()
    if locale is None or locale.language == SOURCE_LANGUAGE:
        return exc.message
    known = MESSAGES.get(exc.code)
    return str(known) if known is not None else exc.message


def field_message(code: str | None, fallback: str) -> str:
    """A person-field or import-file refusal in the user's language; the service's words where there is none."""
    label = PERSON_FIELD_MESSAGES.get(code or "") or IMPORT_FILE_MESSAGES.get(code or "")
    return str(label) if label is not None else fallback
