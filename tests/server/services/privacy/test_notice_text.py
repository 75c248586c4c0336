"""The privacy notice in English and Chinese: fixed sections with starter texts, one hashed text read back by
language, the draft of the next version, and consent still bound to the exact published version."""

# ruff: noqa: RUF001 - Chinese test texts use Chinese punctuation.

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from server.extensions import db
from server.models import ConsentRecord, Person, Site, StaleReason
from server.services.errors import DomainError
from server.services.face import consent
from server.services.privacy import notice_text, privacy
from server.services.privacy.notice_text import LANGUAGES, SECTIONS, NoticeDraft
from tests.support.privacy import ACTOR, enable_face, give_consent, notice_fields

FILLED = re.compile(r"\[to complete: ([^\]]*)\]|【待填写：([^】]*)】")


def complete_draft(**changes: Any) -> NoticeDraft:
    """The starter texts with every marked part completed, as a manager would publish them."""
    starter = notice_text.starter_draft(template_days=365, event_days=90)
    sections = {
        key: {lang: FILLED.sub(lambda m: m.group(1) or m.group(2), text) for lang, text in texts.items()}
        for key, texts in starter.sections.items()
    }
    sections["storage"] = {
        "en": "Encrypted on the server in the management office and on your doors' terminals.",
        "zh": "加密保存在物业管理处的服务器和您有权通行的门禁终端上。",
    }
    for key, value in changes.pop("sections", {}).items():
        sections[key] = {**sections[key], **value}
    draft = NoticeDraft(
        controller=changes.pop("controller", "Maple Court Property Management Ltd. 枫庭物业"),
        contact=changes.pop("contact", "privacy@maple-court.example, +86 10 5555 0100"),
        sections=sections,
    )
    assert not changes
    return draft


def refused(call: Callable[[], Any]) -> DomainError:
    with pytest.raises(DomainError) as info:
        call()
    db.session.rollback()
    return info.value


def test_every_section_has_a_heading_and_a_starter_in_both_languages() -> None:
    keys = [s.key for s in SECTIONS]
    assert keys == [
        "controller",
        "collected",
        "purpose",
        "retention",
        "storage",
        "access",
        "withdrawal",
        "alternatives",
        "rights",
        "contact",
    ]
    for section in SECTIONS:
        assert set(section.heading) == set(section.starter) == set(LANGUAGES)
        assert all(section.heading[lang].strip() and section.starter[lang].strip() for lang in LANGUAGES)
    headings = [s.heading[lang] for s in SECTIONS for lang in LANGUAGES]
    assert len(set(headings)) == len(headings)  # a heading names one section in one language
    # Chinese headings are Chinese: no English word in them.
    assert all(not any("a" <= c.lower() <= "z" for c in s.heading["zh"]) for s in SECTIONS)


def test_starter_fills_the_sites_retention_and_marks_what_only_the_site_knows() -> None:
    draft = notice_text.starter_draft(template_days=180, event_days=30)
    assert "180 days" in draft.text_of("retention", "en") and "30 days" in draft.text_of("retention", "en")
    assert "连续180天" in draft.text_of("retention", "zh") and "保存30天" in draft.text_of("retention", "zh")
    marked = notice_text.to_complete(draft)
    assert ("storage", "en") in marked and ("storage", "zh") in marked and ("contact", "zh") in marked
    assert ("retention", "en") not in marked
    assert not notice_text.to_complete(complete_draft())


def test_the_text_reads_back_by_language_exactly_as_written() -> None:
    tricky = "First line.\n\n  Indented line.\nContact\nWho keeps the data\n谁保管这些数据"
    draft = complete_draft(sections={"purpose": {"en": tricky, "zh": "第一行。\r\n\r\n第二行。"}})
    text = notice_text.render("Maple Court", 3, draft)
    readings = notice_text.parse(text)
    assert readings is not None and set(readings) == {"en", "zh"}
    assert readings["en"].title == "Face entry at Maple Court: privacy notice, version 3"
    assert readings["zh"].title == "Maple Court 刷脸通行隐私告知（第3版）"
    assert readings["en"].closing == notice_text.GUARANTEE["en"] == privacy.ALTERNATIVES
    assert readings["zh"].closing == notice_text.GUARANTEE["zh"]
    # The reader's headings are in the reader's language, in the fixed order.
    assert [s.heading for s in readings["zh"].sections] == [s.heading["zh"] for s in SECTIONS]
    assert [s.heading for s in readings["en"].sections] == [s.heading["en"] for s in SECTIONS]
    purpose = {s.key: s for s in readings["en"].sections}["purpose"]
    assert purpose.text == tricky  # lines that look like headings stay text
    assert {s.key: s for s in readings["zh"].sections}["purpose"].text == "第一行。\n\n第二行。"
    # The facts open their sections in both languages.
    for lang in LANGUAGES:
        assert {s.key: s for s in readings[lang].sections}["controller"].text.startswith("Maple Court Property")
    again = notice_text.draft_of(readings)
    assert again.controller == draft.controller and again.contact == draft.contact
    assert {k: {lang: again.text_of(k, lang) for lang in LANGUAGES} for k in notice_text.SECTION_KEYS} == {
        k: {lang: draft.text_of(k, lang) for lang in LANGUAGES} for k in notice_text.SECTION_KEYS
    }


def test_an_english_only_notice_is_not_read_as_sections(make_site: Callable[..., Site]) -> None:
    legacy = privacy.publish_notice(db.session, ACTOR, make_site(), notice_fields())
    assert notice_text.parse(legacy.text) is None and privacy.readings(legacy) == {}


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"controller": " "}, "notice_incomplete", "controller"),
        ({"contact": "two\nlines"}, "notice_too_long", "contact"),
        ({"sections": {"access": {"zh": "  "}}}, "notice_incomplete", "access_zh"),
        ({"sections": {"purpose": {"en": "x" * 4001}}}, "notice_too_long", "purpose_en"),
        (
            {"sections": {"alternatives": {"zh": "办理门卡：【待填写：地点】。"}}},
            "notice_to_complete",
            "alternatives_zh",
        ),
        ({"sections": {"contact": {"en": "Office hours [To complete: hours]."}}}, "notice_to_complete", "contact_en"),
    ],
)
def test_an_incomplete_draft_is_refused_and_names_the_field(
    make_site: Callable[..., Site], changes: dict[str, Any], code: str, field: str
) -> None:
    site = make_site()
    error = refused(lambda: privacy.publish_notice(db.session, ACTOR, site, complete_draft(**changes)))
    assert isinstance(error, notice_text.NoticeRefused) and (error.code, error.field) == (code, field)
    assert privacy.current_notice(db.session, site) is None


def test_the_starter_as_it_comes_is_not_published(make_site: Callable[..., Site]) -> None:
    site = make_site()
    starter = replace(privacy.next_draft(db.session, site), controller="Maple Court Ltd.", contact="010 5555 0100")
    error = refused(lambda: privacy.publish_notice(db.session, ACTOR, site, starter))
    assert error.code == "notice_to_complete"


def test_consent_stays_bound_to_the_exact_bilingual_version(make_site: Callable[..., Site], make_person) -> None:
    site = make_site()
    first = privacy.publish_notice(db.session, ACTOR, site, complete_draft())
    enable_face(site)  # assessment and face on; the bilingual notice stays the current one
    assert first.sha256 == privacy.notice_digest(first.text) and first.version == 1
    assert first.controller.startswith("Maple Court") and first.storage.startswith("Encrypted on the server")
    assert set(privacy.readings(first)) == {"en", "zh"}
    person: Person = make_person(site, "Li Lei")
    record: ConsentRecord = give_consent(person)
    assert (record.notice_id, record.notice_sha256) == (first.id, first.sha256)
    assert refused(lambda: privacy.publish_notice(db.session, ACTOR, site, complete_draft())).code == (
        "notice_unchanged"
    )
    # A change in one language alone is a new version: the Chinese reader consented to the Chinese text too.
    second = privacy.publish_notice(
        db.session, ACTOR, site, complete_draft(sections={"purpose": {"zh": "仅用于开门。"}})
    )
    db.session.commit()
    assert second.version == 2 and second.sha256 != first.sha256
    db.session.refresh(record)
    assert record.stale_reason == StaleReason.NOTICE
    old = refused(
        lambda: consent.give_consent(db.session, ACTOR, person, notice_sha256=first.sha256, channel=record.channel)
    )
    assert old.code == "notice_changed"


def test_the_next_draft_starts_from_the_current_version(make_site: Callable[..., Site]) -> None:
    site = make_site()
    site.template_unused_days, site.event_retention_days = 200, 60
    starter = privacy.next_draft(db.session, site)
    assert "200 days" in starter.text_of("retention", "en") and notice_text.to_complete(starter)
    draft = complete_draft(sections={"purpose": {"en": "Only the gates."}})
    privacy.publish_notice(db.session, ACTOR, site, draft)
    again = privacy.next_draft(db.session, site)
    assert again.text_of("purpose", "en") == "Only the gates." and again.controller == draft.controller
    assert not notice_text.to_complete(again)


def test_the_next_draft_after_an_english_only_notice_keeps_its_english(make_site: Callable[..., Site]) -> None:
    site = make_site()
    privacy.publish_notice(db.session, ACTOR, site, notice_fields(purpose="Gates only."))
    draft = privacy.next_draft(db.session, site)
    assert draft.text_of("purpose", "en") == "Gates only." and draft.controller.startswith("Maple Court")
    assert draft.text_of("purpose", "zh") == notice_text.SECTIONS[2].starter["zh"]
    assert ("storage", "zh") in notice_text.to_complete(draft) and ("storage", "en") not in notice_text.to_complete(
        draft
    )


def test_the_demo_notice_is_complete_in_both_languages(make_site: Callable[..., Site]) -> None:
    from server.ops.demo_seed import demo_notice

    site = make_site()
    draft = demo_notice(site)
    assert not notice_text.to_complete(draft)
    published = privacy.publish_notice(db.session, ACTOR, site, draft)
    readings = privacy.readings(published)
    assert "1号楼物业管理处" in {s.key: s.text for s in readings["zh"].sections}["alternatives"]
