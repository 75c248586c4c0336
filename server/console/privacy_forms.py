"""Console: the Privacy page's forms: the notice in English and Chinese, the impact assessment, retention."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from server.services.privacy import notice_text
from server.services.privacy.notice_text import NoticeDraft
from server.services.privacy.retention_settings import RANGES, RetentionSettings

_TEXT_MAX = 4000


def _range(name: str) -> NumberRange:
    low, high = RANGES[name]
    return NumberRange(low, high, message=_l("Enter a whole number from %(min)s to %(max)s."))


class NoticeForm(FlaskForm):
    """A notice version: the controller and contact (one line each), then every section in English and Chinese
    (fields `<section>_en` and `<section>_zh`, added below from notice_text.SECTIONS)."""

    controller = StringField(
        _l("Who keeps the data: the company or body, as registered"), validators=[DataRequired(), Length(max=200)]
    )
    contact = StringField(_l("Privacy contact: email, phone or office"), validators=[DataRequired(), Length(max=200)])

    def draft(self) -> NoticeDraft:
        """The form's text as the service takes it."""
        return NoticeDraft(
            controller=self.controller.data or "",
            contact=self.contact.data or "",
            sections={
                section.key: {lang: self[f"{section.key}_{lang}"].data or "" for lang in notice_text.LANGUAGES}
                for section in notice_text.SECTIONS
            },
        )

    @staticmethod
    def data_of(draft: NoticeDraft) -> dict[str, str]:
        """A draft as the form's initial data."""
        data = {"controller": draft.controller, "contact": draft.contact}
        for section in notice_text.SECTIONS:
            for lang in notice_text.LANGUAGES:
                data[f"{section.key}_{lang}"] = draft.text_of(section.key, lang)
        return data


_IN_LANGUAGE = {"en": _l("In English"), "zh": _l("In Chinese")}
for _section in notice_text.SECTIONS:
    for _lang in notice_text.LANGUAGES:
        setattr(
            NoticeForm,
            f"{_section.key}_{_lang}",
            TextAreaField(_IN_LANGUAGE[_lang], validators=[DataRequired(), Length(max=notice_text.MAX_TEXT)]),
        )

# What each section should say, for the manager writing it (the headings themselves are content, in both
# languages, in notice_text).
SECTION_HINTS = {
    "controller": _l("The company's name goes in the field above; here, what it does with the data."),
    "collected": _l("What is recorded: the face template (not a photo), and the door records."),
    "purpose": _l("Why: opening doors, and nothing else."),
    "retention": _l("How long templates and door records are kept. The starter uses this site's retention settings."),
    "storage": _l("Where templates are kept: the property's server (say where) and the door terminals."),
    "access": _l("Which staff can see what."),
    "withdrawal": _l("How to withdraw, and what then happens (deletion everywhere, receipt, other ways keep working)."),
    "alternatives": _l("Card, ID document and app code open the same doors: say where to get a card."),
    "rights": _l("Seeing, copying, correcting and deleting one's data."),
    "contact": _l("The contact above is printed first; add opening hours and how soon you answer."),
}


class AssessmentForm(FlaskForm):
    """A privacy impact assessment to attach."""

    assessed_on = DateField(_l("Assessed on"), validators=[InputRequired()])
    author = StringField(_l("Author"), validators=[DataRequired(), Length(max=200)])
    review_due = DateField(_l("Review due"), validators=[InputRequired()])
    summary = TextAreaField(_l("Summary of findings"), validators=[DataRequired(), Length(max=_TEXT_MAX)])


ASSESSMENT_FIELDS = {"pia_review_order": "review_due", "pia_future": "assessed_on", "pia_incomplete": "summary"}


class RetentionForm(FlaskForm):
    """A site's retention settings."""

    event_retention_days = IntegerField(
        _l("Keep door events for (days)"), validators=[InputRequired(), _range("event_retention_days")]
    )
    visitor_retention_days = IntegerField(
        _l("Keep visitor details after the pass ends for (days)"),
        validators=[InputRequired(), _range("visitor_retention_days")],
    )
    template_unused_days = IntegerField(
        _l("Erase a face template not used for (days)"), validators=[InputRequired(), _range("template_unused_days")]
    )
    erasure_alarm_hours = IntegerField(
        _l("Alarm when a terminal has not confirmed an erasure after (hours)"),
        validators=[InputRequired(), _range("erasure_alarm_hours")],
    )
    app_face_enrollment = BooleanField(_l("Residents may enroll their face from the phone app (after consent there)"))

    def settings(self) -> RetentionSettings:
        """The form's values as the service takes them."""
        return RetentionSettings(
            event_retention_days=self.event_retention_days.data or 0,
            visitor_retention_days=self.visitor_retention_days.data or 0,
            template_unused_days=self.template_unused_days.data or 0,
            erasure_alarm_hours=self.erasure_alarm_hours.data or 0,
            app_face_enrollment=bool(self.app_face_enrollment.data),
        )
