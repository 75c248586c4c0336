"""Console Privacy page: face on/off with its checklist, notice versions, impact assessment, retention, figures."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gatehouse_core.keyring import ServerKeys
from gatehouse_core.wire.messages import Decision, EntryMethod, EventRecord
from server.config import FaceServerConfig
from server.extensions import db
from server.link import event_ingest as events
from server.models import (
    AuditEntry,
    ConsentChannel,
    ConsentRecord,
    ConsoleRole,
    JournalEntry,
    JournalKind,
    PrivacyAssessment,
    PrivacyNotice,
    Site,
    StaleReason,
)
from server.services.face import consent
from server.services.face import templates as face_templates
from server.services.face.enrollment import EnrollmentEngine
from server.services.privacy import notice_text, privacy
from server.services.privacy.figures import site_figures
from server.services.terminals import terminals
from tests.conftest import TEST_ACTOR, csrf_token, login
from tests.support.faces import MODEL_DIRS
from tests.support.privacy import ACTOR, enable_face, give_consent, notice_fields

MODEL = "test-model-000000000000"
VECTOR = bytes(range(256)) * 2


@pytest.fixture
def engine_model(app: Flask) -> str:
    """Give the app a real face engine (OpenCV models from ../shared); returns its model id."""
    engine = EnrollmentEngine(FaceServerConfig(engine="opencv", model_dir=MODEL_DIRS["opencv"]))
    app.extensions["gatehouse"] = replace(app.extensions["gatehouse"], face=engine)
    return engine.model().model_id


@pytest.fixture
def as_admin(client: FlaskClient, make_user: Callable[..., Any]) -> FlaskClient:
    make_user("admin1", ConsoleRole.ADMIN)
    login(client, "admin1")
    return client


def token(client: FlaskClient, url: str = "/privacy") -> str:
    return csrf_token(client.get(url).text)


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, data={"csrf_token": token(client), **(data or {})})


def assess(site: Site, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "assessed_on": date.today() - timedelta(days=3),
        "author": "Wang Fang, DPO",
        "review_due": date.today() + timedelta(days=362),
        "summary": "Optional face entry with card, ID and code at every face door.",
    }
    fields.update(changes)
    privacy.attach_assessment(db.session, ACTOR, site, **fields)
    db.session.commit()


def audit_actions(site: Site) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.site_id == site.id)))


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


FILLED = re.compile(r"\[to complete: ([^\]]*)\]|【待填写：([^】]*)】")  # noqa: RUF001 - the Chinese mark


def notice_form(**changes: str) -> dict[str, str]:
    """A complete notice as the form posts it: the starter texts with their marked parts filled in; keyword
    arguments replace fields (`controller`, `purpose_en`, `access_zh`...)."""
    starter = notice_text.starter_draft(template_days=365, event_days=90)
    data = {"controller": "Maple Court Property Management Ltd.", "contact": "privacy@maple-court.example"}
    for key, texts in starter.sections.items():
        for lang, text in texts.items():
            data[f"{key}_{lang}"] = FILLED.sub(lambda m: m.group(1) or m.group(2), text)
    assert set(changes) <= set(data)
    return {**data, **changes}


def test_page_without_notice_or_assessment_lists_what_is_missing(as_admin, make_site) -> None:
    site = make_site()
    page = as_admin.get("/privacy")
    assert page.status_code == 200
    checklist = page.text.split('<ul class="checklist')[1].split("</ul>")[0]
    assert checklist.count("<span>Missing</span>") == 3 and checklist.count('data-badge="bad"') == 3
    assert "privacy impact assessment" in checklist and "published privacy notice" in checklist
    assert "Add a [face] section to the server config" in checklist
    assert "No notice has been published for this site." in page.text
    assert "No impact assessment is attached to this site." in page.text
    # Switching on now is refused, saying what to do, and changes nothing.
    response = post(as_admin, f"/privacy/{site.id}/face/on")
    assert response.status_code == 302
    shown = as_admin.get(response.headers["Location"]).text
    assert "has no face engine configured" in shown
    db.session.refresh(site)
    assert not site.face_enabled and "privacy.face_enable" not in audit_actions(site)


def test_face_on_refused_until_ready_then_on_and_off(as_admin, make_site, engine_model: str) -> None:
    site = make_site()
    page = as_admin.get("/privacy").text
    assert f"face engine uses model {engine_model}" in page
    response = post(as_admin, f"/privacy/{site.id}/face/on")
    shown = as_admin.get(response.headers["Location"]).text
    assert "Face entry was not switched on: Attach a privacy impact assessment" in shown
    assess(site)
    response = post(as_admin, f"/privacy/{site.id}/face/on")
    shown = as_admin.get(response.headers["Location"]).text
    assert "Face entry was not switched on: Publish the site&#39;s privacy notice first" in shown
    db.session.refresh(site)
    assert not site.face_enabled and site.face_model_id is None
    assert "privacy.face_enable" not in audit_actions(site)

    privacy.publish_notice(db.session, ACTOR, site, notice_fields())
    db.session.commit()
    checklist = as_admin.get("/privacy").text.split('<ul class="checklist')[1].split("</ul>")[0]
    assert checklist.count("<span>Done</span>") == 3 and "Missing" not in checklist
    response = post(as_admin, f"/privacy/{site.id}/face/on")
    assert "Face entry is on" in as_admin.get(response.headers["Location"]).text
    db.session.refresh(site)
    assert site.face_enabled and site.face_model_id == engine_model
    assert "privacy.face_enable" in audit_actions(site)

    page = as_admin.get("/privacy").text
    assert 'data-confirm="Switch face entry off? Every terminal of this site drops its face templates' in page
    response = post(as_admin, f"/privacy/{site.id}/face/off")
    assert "Face entry is off" in as_admin.get(response.headers["Location"]).text
    db.session.refresh(site)
    assert not site.face_enabled
    last = db.session.scalar(
        select(JournalEntry.kind).where(JournalEntry.site_id == site.id).order_by(JournalEntry.seq.desc()).limit(1)
    )
    assert last is JournalKind.ROSTER_RESET and audit_actions(site)[-1] == "privacy.face_disable"


def test_overdue_assessment_blocks_face_on(as_admin, make_site, engine_model: str) -> None:
    site = make_site()
    assess(site, assessed_on=date.today() - timedelta(days=400), review_due=date.today() - timedelta(days=1))
    privacy.publish_notice(db.session, ACTOR, site, notice_fields())
    db.session.commit()
    page = as_admin.get("/privacy").text
    assert "<span>Overdue</span>" in page
    response = post(as_admin, f"/privacy/{site.id}/face/on")
    assert "overdue for review" in as_admin.get(response.headers["Location"]).text
    db.session.refresh(site)
    assert not site.face_enabled


def test_publish_notice_through_the_form_makes_consents_stale(as_admin, make_site, make_person) -> None:
    site = enable_face(make_site(), MODEL)
    alice, bob = make_person(site, "Alice"), make_person(site, "Bob")
    give_consent(alice)
    give_consent(bob)
    url = f"/privacy/{site.id}/notices/new"
    form = as_admin.get(url)
    assert form.status_code == 200
    # Prefilled from the current notice, with the cost of publishing spelled out.
    assert "Maple Court Property Management Ltd." in form.text
    assert "stale: 2 consents." in form.text
    response = as_admin.post(
        url, data={"csrf_token": csrf_token(form.text), **notice_form(purpose_en="Gates and the bicycle room.")}
    )
    assert response.status_code == 302 and response.headers["Location"] == f"/privacy/{site.id}/notices/2"
    shown = as_admin.get(response.headers["Location"]).text
    assert "Version 2 of the notice is published. 2 consents became stale" in shown
    assert "Gates and the bicycle room." in shown and "This is the current version" in shown
    assert count(PrivacyNotice, PrivacyNotice.site_id == site.id) == 2
    reasons = set(db.session.scalars(select(ConsentRecord.stale_reason).where(ConsentRecord.site_id == site.id)))
    assert reasons == {StaleReason.NOTICE}
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "privacy.notice_publish").order_by(AuditEntry.id.desc())
    )
    assert entry is not None and entry.actor_label == "admin1" and entry.details["consents_made_stale"] == 2
    # Nothing is live any more, and the page says so for the next version.
    assert "stale: 0 consents." in as_admin.get(url).text


def test_bad_or_unchanged_notice_is_refused_and_nothing_published(as_admin, make_site) -> None:
    site = make_site()
    privacy.publish_notice(db.session, ACTOR, site, notice_fields())
    db.session.commit()
    url = f"/privacy/{site.id}/notices/new"
    data = {"csrf_token": token(as_admin, url), **notice_form(rights_en="")}
    response = as_admin.post(url, data=data)
    assert response.status_code == 422
    assert re.search(r'id="rights_en"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="rights_en"', response.text)
    assert 'id="rights_en-error" role="alert"' in response.text
    # The rest of what was typed comes back.
    assert "Maple Court Property Management Ltd." in response.text
    assert as_admin.post(url, data={"csrf_token": token(as_admin, url), **notice_form()}).status_code == 302
    response = as_admin.post(url, data={"csrf_token": token(as_admin, url), **notice_form()})
    assert response.status_code == 422 and "same as the current version" in response.text
    assert count(PrivacyNotice, PrivacyNotice.site_id == site.id) == 2


def test_first_notice_form_starts_from_the_starter_texts_in_both_languages(as_admin, make_site) -> None:
    site = make_site()
    url = f"/privacy/{site.id}/notices/new"
    page = as_admin.get(url)
    assert page.status_code == 200
    for section in notice_text.SECTIONS:
        assert f'<span lang="en">{section.heading["en"]}</span>' in page.text
        assert f'<span lang="zh-CN">{section.heading["zh"]}</span>' in page.text
    assert 'id="access_zh" lang="zh-CN"' in page.text or 'lang="zh-CN" id="access_zh"' in page.text
    assert "[to complete: which staff" in page.text and "【待填写：哪些人员" in page.text  # noqa: RUF001
    assert page.text.count('data-badge="pending"') >= 5 and "data-starter" in page.text
    # Sent as it came, with the facts filled in, the starter marks are refused, on the first marked field.
    data = {"csrf_token": csrf_token(page.text), "controller": "Maple Court Ltd.", "contact": "010 5555 0100"}
    data.update({name: value for name, value in _form_fields(page.text).items() if name not in data})
    response = as_admin.post(url, data=data)
    assert response.status_code == 422 and count(PrivacyNotice, PrivacyNotice.site_id == site.id) == 0
    assert 'id="storage_en-error" role="alert"' in response.text and "marked “to complete”" in response.text


def _form_fields(html: str) -> dict[str, str]:
    """The textareas of a page, by name, with their text unescaped."""
    from html import unescape

    return {
        name: unescape(text).lstrip("\n")
        for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S)
    }


def test_a_published_notice_shows_each_language_with_its_own_headings(as_admin, make_site) -> None:
    site = make_site()
    url = f"/privacy/{site.id}/notices/new"
    form = notice_form(purpose_en="Opening the gates.", purpose_zh="用于开启大门。")
    assert as_admin.post(url, data={"csrf_token": token(as_admin, url), **form}).status_code == 302
    notice = privacy.current_notice(db.session, site)
    assert notice is not None and notice.sha256 == privacy.notice_digest(notice.text)
    page = as_admin.get(f"/privacy/{site.id}/notices/1").text
    english, chinese = page.index('data-reading="en"'), page.index('data-reading="zh"')
    assert english < chinese  # the console's language first
    assert "谁保管这些数据" in page[chinese:] and "谁保管这些数据" not in page[english:chinese]
    assert "Who keeps the data" in page[english:chinese] and "用于开启大门。" in page[chinese:]
    assert notice.sha256 in page
    # In Chinese, the Chinese reading comes first.
    assert as_admin.post("/language", data={"csrf_token": token(as_admin), "language": "zh_CN"}).status_code == 302
    page = as_admin.get(f"/privacy/{site.id}/notices/1").text
    assert page.index('data-reading="zh"') < page.index('data-reading="en"')


def test_old_notice_version_shows_its_own_text(as_admin, make_site) -> None:
    site = make_site()
    first = privacy.publish_notice(db.session, ACTOR, site, notice_fields(contact="old@maple-court.example"))
    privacy.publish_notice(db.session, ACTOR, site, notice_fields(contact="new@maple-court.example"))
    db.session.commit()
    index = as_admin.get("/privacy").text
    assert f'href="/privacy/{site.id}/notices/1"' in index and first.sha256[:12] in index
    page = as_admin.get(f"/privacy/{site.id}/notices/1")
    assert page.status_code == 200
    assert "old@maple-court.example" in page.text and "new@maple-court.example" not in page.text
    assert "This is an old version. The current one is version 2." in page.text
    assert first.sha256 in page.text
    assert as_admin.get(f"/privacy/{site.id}/notices/9").status_code == 404
    assert as_admin.get("/privacy/999/notices/1").status_code == 404


def test_attach_assessment_through_the_form(as_admin, make_site) -> None:
    site = make_site()
    url = f"/privacy/{site.id}/assessment"
    today = date.today()
    good = {
        "assessed_on": (today - timedelta(days=2)).isoformat(),
        "author": "Chen Jing, privacy officer",
        "review_due": (today + timedelta(days=365)).isoformat(),
        "summary": "Templates encrypted at rest; card, ID and code at every face door.",
    }
    bad = post(as_admin, url, {**good, "review_due": (today - timedelta(days=5)).isoformat()})
    assert bad.status_code == 422
    assert 'id="review_due-error" role="alert">The review date must come after the assessment date.' in bad.text
    assert "Chen Jing, privacy officer" in bad.text  # the user's input is kept
    assert count(PrivacyAssessment) == 0
    response = post(as_admin, url, good)
    assert response.status_code == 302
    page = as_admin.get(response.headers["Location"]).text
    assert "The impact assessment is attached." in page and "Chen Jing, privacy officer" in page
    found = privacy.current_assessment(db.session, site)
    assert found is not None and found.attached_by == "admin1" and found.review_due == today + timedelta(days=365)
    assert "privacy.assessment_attach" in audit_actions(site)


def test_retention_settings_are_saved_and_audited(as_admin, make_site) -> None:
    site = make_site()
    data = {
        "event_retention_days": "60",
        "visitor_retention_days": "0",
        "template_unused_days": "365",
        "erasure_alarm_hours": "12",
        "app_face_enrollment": "y",
    }
    response = post(as_admin, f"/privacy/{site.id}/retention", data)
    assert response.status_code == 302
    assert "Retention settings saved." in as_admin.get(response.headers["Location"]).text
    db.session.refresh(site)
    assert (site.event_retention_days, site.visitor_retention_days, site.template_unused_days) == (60, 0, 365)
    assert site.erasure_alarm_hours == 12 and site.app_face_enrollment
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "privacy.retention_settings"))
    assert entry is not None and entry.actor_label == "admin1"
    assert entry.details == {
        "event_retention_days": {"from": 90, "to": 60},
        "visitor_retention_days": {"from": 30, "to": 0},
        "erasure_alarm_hours": {"from": 24, "to": 12},
        "app_face_enrollment": {"from": False, "to": True},
    }
    # Saving the same values again changes and audits nothing.
    response = post(as_admin, f"/privacy/{site.id}/retention", data)
    assert "Nothing changed" in as_admin.get(response.headers["Location"]).text
    assert audit_actions(site).count("privacy.retention_settings") == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_retention_days", "0"),
        ("visitor_retention_days", "-1"),
        ("erasure_alarm_hours", "721"),
        ("template_unused_days", "soon"),
    ],
)
def test_out_of_range_retention_is_refused_with_a_field_error(as_admin, make_site, name: str, value: str) -> None:
    site = make_site()
    data = {
        "event_retention_days": "60",
        "visitor_retention_days": "10",
        "template_unused_days": "200",
        "erasure_alarm_hours": "12",
        name: value,
    }
    response = post(as_admin, f"/privacy/{site.id}/retention", data)
    assert response.status_code == 422
    assert f'id="{name}-error" role="alert"' in response.text
    assert re.search(rf'aria-invalid="true"[^>]*id="{name}"', response.text)
    other = "erasure_alarm_hours" if name != "erasure_alarm_hours" else "template_unused_days"
    assert f'value="{data[other]}"' in response.text  # the other values typed come back
    db.session.refresh(site)
    assert (site.event_retention_days, site.visitor_retention_days, site.template_unused_days) == (90, 30, 365)
    assert site.erasure_alarm_hours == 24 and "privacy.retention_settings" not in audit_actions(site)


def face_event(door: int, person: str | None, decision: Decision) -> EventRecord:
    return EventRecord(
        uid=str(uuid.uuid4()),
        door=door,
        method=EntryMethod.FACE,
        decision=decision,
        reason="granted" if decision is Decision.GRANT else "unknown",
        person=person,
        at=datetime.now(UTC) - timedelta(hours=1),
    )


def shown_figures(html: str) -> dict[str, str]:
    """Figure label → the number shown above it."""
    section = html.split('<ul class="figures">')[1].split("</ul>")[0]
    return {
        label.strip(): value.strip()
        for value, label in re.findall(r'<span class="n[^"]*">([^<]*)</span>([^<]*)</li>', section)
    }


def test_figures_match_site_figures(as_admin, make_site, make_door, make_person, keys: ServerKeys) -> None:
    site = enable_face(make_site(), MODEL)
    gate = make_door(site, "Gate", face=True)
    terminal = terminals.provision_terminal(db.session, TEST_ACTOR, site, "Gate terminal", [gate]).terminal
    alice, bob, carol = make_person(site, "Alice"), make_person(site, "Bob"), make_person(site, "Carol")
    for person in (alice, bob):
        face_templates.store_template(db.session, TEST_ACTOR, keys, person, give_consent(person), MODEL, VECTOR)
    consent.decline_face(db.session, ACTOR, carol, ConsentChannel.DESK)
    sender = events.sender_of(db.session, terminal)
    batch = [face_event(gate.id, alice.pseudonym, Decision.GRANT) for _ in range(2)]
    batch.append(face_event(gate.id, None, Decision.DENY))
    events.ingest(db.session, [(sender, batch)])
    db.session.commit()
    figures = site_figures(db.session, site)
    assert (figures.people, figures.face_enrolled, figures.declined, figures.face_attempts) == (3, 2, 1, 3)
    page = as_admin.get("/privacy").text
    shown = shown_figures(page)
    assert shown["active people"] == "3" and shown["use face entry"] == "2"
    assert shown["opt-in rate"] == "66.7%" and shown["declined face entry"] == "1"
    assert shown["face attempts (30 days)"] == "3" and shown["fell back to card, ID or code"] == "1"
    assert shown["fallback rate"] == "33.3%" and shown["consents to renew"] == str(figures.stale_consents)
    assert shown["deletions overdue"] == "0"
    assert "Privacy notice version 1." in page
    assert "2 of the 100,000-person filing threshold" in page


def test_retention_last_run_is_shown(as_admin, make_site) -> None:
    from server.services import audit

    site = make_site()
    assert "Retention has not removed anything at this site yet." in as_admin.get("/privacy").text
    audit.record(
        db.session,
        ACTOR,
        "retention.purge",
        "site",
        site.id,
        site_id=site.id,
        details={"kind": "access_events", "count": 1234, "cutoff": "2026-01-01T00:00:00+00:00"},
    )
    db.session.commit()
    assert "(1,234 door events)" in as_admin.get("/privacy").text


def test_site_selector_when_there_are_several_sites(as_admin, make_site) -> None:
    first = make_site("alpha")
    assert 'id="site"' not in as_admin.get("/privacy").text
    second = make_site("beta")
    page = as_admin.get(f"/privacy?site={second.id}").text
    assert 'id="site" name="site" data-autosubmit' in page
    assert f'<option value="{second.id}" selected>' in page and f'<option value="{first.id}">' in page
    assert f"/privacy/{second.id}/retention" in page


def test_no_site_yet(as_admin) -> None:
    page = as_admin.get("/privacy")
    assert page.status_code == 200 and "There is no site yet." in page.text


def post_routes(site: Site) -> list[tuple[str, dict[str, str]]]:
    today = date.today()
    return [
        (f"/privacy/{site.id}/face/on", {}),
        (f"/privacy/{site.id}/face/off", {}),
        (f"/privacy/{site.id}/notices/new", notice_form(purpose_en="Changed.")),
        (
            f"/privacy/{site.id}/assessment",
            {
                "assessed_on": today.isoformat(),
                "author": "X",
                "review_due": (today + timedelta(days=9)).isoformat(),
                "summary": "S",
            },
        ),
        (
            f"/privacy/{site.id}/retention",
            {
                "event_retention_days": "5",
                "visitor_retention_days": "5",
                "template_unused_days": "5",
                "erasure_alarm_hours": "5",
            },
        ),
    ]


def test_manager_can_view_but_not_change(client, make_user, make_site) -> None:
    site = enable_face(make_site(), MODEL)
    make_user("manager1", ConsoleRole.MANAGER)
    login(client, "manager1")
    page = client.get("/privacy")
    assert page.status_code == 200
    assert "only administrators can change privacy settings" in page.text
    assert "/face/off" not in page.text and "/notices/new" not in page.text and "/retention" not in page.text
    assert client.get(f"/privacy/{site.id}/notices/1").status_code == 200
    assert client.get(f"/privacy/{site.id}/notices/new").status_code == 403
    before = audit_actions(site)
    for url, data in post_routes(site):
        assert post(client, url, data).status_code == 403, url
    db.session.refresh(site)
    assert site.face_enabled and site.event_retention_days == 90
    assert audit_actions(site) == before and count(PrivacyNotice) == 1


def test_guard_gets_403_everywhere(client, make_user, make_site) -> None:
    site = enable_face(make_site(), MODEL)
    make_user("guard1", ConsoleRole.GUARD)
    login(client, "guard1")
    assert "/privacy" not in client.get("/").text
    for url in ("/privacy", f"/privacy/{site.id}/notices/1", f"/privacy/{site.id}/notices/new"):
        assert client.get(url).status_code == 403, url
    for url, data in post_routes(site):
        assert client.post(url, data={"csrf_token": token(client, "/"), **data}).status_code == 403, url
    db.session.refresh(site)
    assert site.face_enabled and count(PrivacyNotice) == 1


def test_every_alarm_kind_has_a_label_on_the_privacy_page() -> None:
    # A new kind of alarm (the snapshot budget, say) must not reach managers as its raw code.
    from server.console.privacy import _ALARM_KINDS
    from server.services.privacy import alarms

    assert set(_ALARM_KINDS) == set(alarms.PRIVACY_KINDS)
