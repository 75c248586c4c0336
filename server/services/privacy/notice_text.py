"""The face-entry privacy notice as residents read it: a fixed list of sections, each with a heading and a
starter text in English and Chinese, rendered into the one text whose SHA-256 consent records.

This is content, not console wording: residents read it in the language they choose, whatever the language of
the manager who published it, so both languages live here rather than in the console's translation catalogue.

The published text holds one block per language (title, sections, the closing guarantee). Every line a manager
wrote is indented by INDENT and every heading is one of ours, unindented, so `parse` reads the sections back from
the exact text that was hashed: what a reader is shown in either language is part of what they consent to.
"""

# ruff: noqa: RUF001 - the Chinese texts use Chinese (full-width) punctuation, as they should.

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from server.services.errors import RuleViolation

LANGUAGES = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
INDENT = "    "
MAX_FACT = 200  # controller and contact: one line each
MAX_TEXT = 4000  # a section in one language

TITLE = {
    "en": "Face entry at {site}: privacy notice, version {version}",
    "zh": "{site} 刷脸通行隐私告知（第{version}版）",
}
# Closes each language block; not editable: face entry is optional and the other ways open the same doors.
GUARANTEE = {
    "en": "Face entry is optional. Key card, ID document and app code open every door that face opens, "
    "and declining or withdrawing changes nothing else about your access.",
    "zh": "刷脸通行完全自愿。门卡、身份证件和手机应用通行码可以开启所有能刷脸开启的门；"
    "拒绝或撤回刷脸不影响您的其他通行权利。",
}
# A starter text marks what only the site can say like this; a notice with a mark left is not published.
TO_COMPLETE = {"en": "[to complete: {what}]", "zh": "【待填写：{what}】"}
_MARK = re.compile(r"\[\s*to complete|【\s*待填写", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """One part of the notice: its heading and starter text in each language; `fact` names the one-line field
    (controller, contact) printed as the section's first line, the same in both languages."""

    key: str
    heading: Mapping[str, str]
    starter: Mapping[str, str]
    fact: str | None = None


def _todo(en: str, zh: str) -> dict[str, str]:
    return {"en": TO_COMPLETE["en"].format(what=en), "zh": TO_COMPLETE["zh"].format(what=zh)}


_ROOM = _todo("where the server stands, e.g. the management office", "服务器所在位置，例如物业管理处机房")
_STAFF = _todo("which staff, e.g. the property manager and the duty guard", "哪些人员，例如物业经理和值班保安")
_CARD = _todo("where and when, e.g. the management office, Building 1", "地点和时间，例如1号楼物业管理处")
_HOURS = _todo("opening hours", "办公时间")

SECTIONS: tuple[Section, ...] = (
    Section(
        "controller",
        {"en": "Who keeps the data", "zh": "谁保管这些数据"},
        {
            "en": "It decides how your face data is used and is responsible for it under China's Personal "
            "Information Protection Law.",
            "zh": "该单位决定您的人脸数据如何使用，并依照《个人信息保护法》对其负责。",
        },
        fact="controller",
    ),
    Section(
        "collected",
        {"en": "What is collected", "zh": "收集哪些信息"},
        {
            "en": "When you enroll, one photo of your face is turned into a face template: a list of numbers, not "
            "a picture. The photo is deleted at once. At the doors the camera compares the face in front of it "
            "with the templates and keeps no picture. We also record which door opened, when, and how (face, "
            "card, ID document or code).",
            "zh": "登记时，您的一张面部照片会转换为人脸特征值：一组数字，而不是图片。照片随即删除。"
            "门禁摄像头只将眼前的人脸与特征值比对，不保存任何图像。我们还会记录哪扇门、在何时、"
            "以何种方式（刷脸、门卡、身份证件或通行码）开启。",
        },
    ),
    Section(
        "purpose",
        {"en": "Why it is used", "zh": "为什么使用"},
        {
            "en": "Only to open the doors you may use, when you choose face entry. It is not used to follow "
            "people, not for marketing, and it is not given to anyone else.",
            "zh": "仅用于在您选择刷脸时，为您开启您有权通行的门。不用于追踪任何人，不用于营销，也不提供给他人。",
        },
    ),
    Section(
        "retention",
        {"en": "How long it is kept", "zh": "保存多久"},
        {
            "en": "Your face template is kept while your consent stands. It is deleted when you withdraw, when you "
            "move out, or when your face has not opened a door for {template_days} days. Door records are kept "
            "for {event_days} days.",
            "zh": "在您的同意有效期间保存您的人脸特征值。您撤回同意、迁出，或连续{template_days}天未刷脸开门时，"
            "特征值即被删除。开门记录保存{event_days}天。",
        },
    ),
    Section(
        "storage",
        {"en": "Where it is stored", "zh": "存放在哪里"},
        {
            "en": f"Encrypted on the property's own server ({_ROOM['en']}) and on the terminals of the doors you "
            "may use. The terminals compare faces on the device itself; nothing goes to a cloud service. When a "
            "template is deleted, every terminal confirms that it has deleted its copy.",
            "zh": f"加密保存在物业自有的服务器（{_ROOM['zh']}）和您有权通行的门禁终端上。终端在本机完成比对，"
            "不上传任何云服务。特征值被删除时，每台终端都会确认已删除其副本。",
        },
    ),
    Section(
        "access",
        {"en": "Who can see it", "zh": "谁能看到"},
        {
            "en": f"Nobody can view a face template as a picture. Authorised property staff ({_STAFF['en']}) can "
            "see whether you use face entry, and the door records. Nothing is shared with other companies or "
            "with the authorities unless the law requires it.",
            "zh": f"任何人都无法把特征值还原为图片查看。经授权的物业人员（{_STAFF['zh']}）可以看到您是否使用"
            "刷脸以及开门记录。除法律要求外，不向其他公司或机构提供。",
        },
    ),
    Section(
        "withdrawal",
        {"en": "How to withdraw, and what happens then", "zh": "如何撤回同意，撤回后会怎样"},
        {
            "en": "You can withdraw at any time: in the phone app, at the management office, or through the contact "
            "below. Your template is then deleted from the server and from every terminal, and you get a receipt "
            "once every terminal has confirmed. Your card, ID document and app code keep working as before.",
            "zh": "您可以随时撤回：在手机应用中、到物业管理处，或通过下方的联系方式。撤回后，您的特征值会从"
            "服务器和每台终端删除，所有终端确认后您会收到删除回执。您的门卡、身份证件和通行码照常使用。",
        },
    ),
    Section(
        "alternatives",
        {"en": "Other ways in: card, ID document, app code", "zh": "其他通行方式：门卡、身份证件、通行码"},
        {
            "en": f"A key card, your ID document or a code in the phone app open the same doors as your face. "
            f"To get a key card: {_CARD['en']}.",
            "zh": f"门卡、身份证件或手机应用中的通行码可以开启与刷脸相同的门。办理门卡：{_CARD['zh']}。",
        },
    ),
    Section(
        "rights",
        {"en": "Your rights", "zh": "您的权利"},
        {
            "en": "You may see the data we hold about you and get a copy of it, have it corrected or deleted, and "
            "ask how it is used. The phone app shows your own records.",
            "zh": "您可以查阅并复制我们保存的您的数据，要求更正或删除，并询问其使用方式。"
            "手机应用中可以查看您本人的记录。",
        },
    ),
    Section(
        "contact",
        {"en": "Contact", "zh": "联系方式"},
        {
            "en": f"For questions about your face data or to use your rights, write, call or come to the "
            f"management office ({_HOURS['en']}). We answer within 15 working days.",
            "zh": f"如对人脸数据有疑问或需行使您的权利，请来信、来电或到物业管理处（{_HOURS['zh']}）。"
            "我们将在15个工作日内答复。",
        },
        fact="contact",
    ),
)
SECTION_KEYS = tuple(s.key for s in SECTIONS)
_BY_HEADING = {s.heading[lang]: (lang, s) for s in SECTIONS for lang in LANGUAGES}


@dataclass(frozen=True)
class NoticeDraft:
    """A notice to publish: the controller's name and the privacy contact (one line each, shown in both
    languages) and each section's text by language."""

    controller: str
    contact: str
    sections: Mapping[str, Mapping[str, str]]

    def text_of(self, key: str, lang: str) -> str:
        """One section's text in one language, with line ends made plain ('' if missing)."""
        return normalise(self.sections.get(key, {}).get(lang, ""))


@dataclass(frozen=True)
class ReaderSection:
    """A section as a reader sees it, in one language."""

    key: str
    heading: str
    text: str


@dataclass(frozen=True)
class NoticeReading:
    """A published notice in one language, read back from its exact text."""

    lang: str
    title: str
    sections: tuple[ReaderSection, ...]
    closing: str


def normalise(text: str) -> str:
    """Plain line ends, no trailing spaces on a line, no blank lines around the text."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip()


def starter_draft(*, template_days: int, event_days: int, controller: str = "", contact: str = "") -> NoticeDraft:
    """The starter texts, with the site's retention periods filled in; the marked parts are for the manager."""
    return NoticeDraft(
        controller=controller,
        contact=contact,
        sections={
            s.key: {
                lang: s.starter[lang].format(template_days=template_days, event_days=event_days) for lang in LANGUAGES
            }
            for s in SECTIONS
        },
    )


def to_complete(draft: NoticeDraft) -> list[tuple[str, str]]:
    """The (section, language) pairs that still carry a starter mark, in notice order."""
    return [(s.key, lang) for s in SECTIONS for lang in LANGUAGES if _MARK.search(draft.text_of(s.key, lang))]


def has_mark(text: str) -> bool:
    """Whether a text still carries a starter mark (TO_COMPLETE, in either language)."""
    return bool(_MARK.search(text))


class NoticeRefused(RuleViolation):
    """A draft notice refused, naming the form field to correct (`controller`, `contact` or `purpose_zh`...)."""

    def __init__(self, message: str, *, code: str, field: str) -> None:
        super().__init__(message, code=code)
        self.field = field


def check(draft: NoticeDraft) -> None:
    """Refuse a draft with a part missing, too long or still marked to complete (NoticeRefused names it)."""
    for name in ("controller", "contact"):
        value = getattr(draft, name).strip()
        if not value:
            raise NoticeRefused(f"The privacy notice needs its {name}.", code="notice_incomplete", field=name)
        if len(value) > MAX_FACT or "\n" in value or "\r" in value:
            raise NoticeRefused(
                f"The notice's {name} must be one line of at most {MAX_FACT} characters.",
                code="notice_too_long",
                field=name,
            )
    for section in SECTIONS:
        for lang in LANGUAGES:
            value = draft.text_of(section.key, lang)
            where = f"{section.key}_{lang}"
            if not value:
                raise NoticeRefused(
                    f"The privacy notice needs its '{section.heading['en']}' section in {lang}.",
                    code="notice_incomplete",
                    field=where,
                )
            if len(value) > MAX_TEXT:
                raise NoticeRefused(
                    f"The notice's '{section.heading['en']}' section in {lang} is longer than {MAX_TEXT} characters.",
                    code="notice_too_long",
                    field=where,
                )
            if has_mark(value):
                raise NoticeRefused(
                    f"The notice's '{section.heading['en']}' section in {lang} still has a part marked to complete.",
                    code="notice_to_complete",
                    field=where,
                )


def columns(draft: NoticeDraft) -> dict[str, str]:
    """The notice's one-part-per-column copy: the facts and the English of the matching sections."""
    english = {key: draft.text_of(key, "en") for key in SECTION_KEYS}
    return {
        "controller": draft.controller.strip(),
        "contact": draft.contact.strip(),
        "purpose": english["purpose"],
        "method": english["collected"],
        "storage": english["storage"],
        "retention": english["retention"],
        "rights": english["rights"],
        "withdrawal": english["withdrawal"],
    }


def render(site_name: str, version: int, draft: NoticeDraft) -> str:
    """The exact published text: one block per language, each a title, the sections and the guarantee."""
    lines: list[str] = []
    for lang in LANGUAGES:
        lines += [TITLE[lang].format(site=site_name, version=version), ""]
        for section in SECTIONS:
            body = draft.text_of(section.key, lang)
            if section.fact is not None:
                body = f"{getattr(draft, section.fact).strip()}\n{body}"
            lines.append(section.heading[lang])
            lines += [f"{INDENT}{line}" if line else "" for line in body.split("\n")]
            lines.append("")
        lines += [GUARANTEE[lang], ""]
    return "\n".join(lines)


@dataclass
class _Part:
    line: str  # a structural line (title, guarantee), or the heading of a section
    lang: str = ""
    section: Section | None = None
    body: list[str] | None = None


def parse(text: str) -> dict[str, NoticeReading] | None:
    """A published text read back by language; None for a notice published before sections had headings in
    both languages (it is shown as its text, as it was)."""
    parts: list[_Part] = []
    body: list[str] | None = None
    for line in text.split("\n"):
        if line.startswith(INDENT) or not line:
            if body is not None:
                body.append(line[len(INDENT) :])
            continue
        found = _BY_HEADING.get(line)
        body = None if found is None else []
        parts.append(_Part(line) if found is None else _Part(line, found[0], found[1], body))
    readings = {}
    for lang in LANGUAGES:
        places = [i for i, part in enumerate(parts) if part.lang == lang]
        if not places:
            continue
        before = [part.line for part in parts[: places[0]] if part.section is None]
        after = [part.line for part in parts[places[-1] + 1 :] if part.section is None]
        sections = tuple(
            ReaderSection(part.section.key, part.line, "\n".join(part.body).strip())
            for part in (parts[i] for i in places)
            if part.section is not None and part.body is not None
        )
        readings[lang] = NoticeReading(lang, before[-1] if before else "", sections, after[0] if after else "")
    return readings or None


def draft_of(readings: Mapping[str, NoticeReading]) -> NoticeDraft:
    """The draft a parsed notice was rendered from (the starting point of its next version)."""
    facts: dict[str, str] = {}
    sections: dict[str, dict[str, str]] = {}
    for lang, reading in readings.items():
        for part in reading.sections:
            text = part.text
            fact = next(s.fact for s in SECTIONS if s.key == part.key)
            if fact is not None:
                first, _newline, text = text.partition("\n")
                facts.setdefault(fact, first.strip())
            sections.setdefault(part.key, {})[lang] = text.strip()
    return NoticeDraft(facts.get("controller", ""), facts.get("contact", ""), sections)
