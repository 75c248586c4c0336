"""The console as a property manager uses it, in a real browser against the live server: log in, create a
resident, add a card that opens the real terminal, record consent, enroll a real photo and see the template
reach the terminal, withdraw and see the erasure receipt complete, switch language. Screenshots of the main
pages are saved as test artifacts (see conftest.screenshot_dir)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import ADMIN, GROUP_NAME, MANAGER, REPO, SITE_NAME, TERMINAL_NAME, Stack
from tests.integration.sync_rig import wait_for
from tests.support.faces import people_with, photos_of

pytestmark = [pytest.mark.integration]

# The side navigation, grouped by job: Operations, People, Visitors, Doors & access, Privacy, Administration.
NAV = [
    "Live operations",
    "Dashboard",
    "Events",
    "Terminals",
    "People",
    "Visitor passes",
    "Doors & groups",
    "Privacy",
    "Audit log",
    "Integrations",
]
MANAGER_NAV = [label for label in NAV if label != "Audit log"]
TRANSLATIONS = REPO / "server" / "console" / "translations" / "zh_CN"
CARD = "04C1D2E3F4A5B6"
READ_CARD = "04a1b2c3d4e5f6"  # as the reader reports it
RESIDENT = "Zhang Min"


def shoot(page: Page, shots: Path, name: str) -> None:
    """A full-page screenshot artifact."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (shots / f"{name}.png").stat().st_size > 0


def log_in(page: Page, username: str) -> None:
    """Log in through the form, as a person does, and land on the dashboard."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def main_nav(page: Page) -> Locator:
    """The main navigation (its name is translated, so find it by position: the side bar)."""
    return page.locator("aside").get_by_role("navigation")


def reload_until(page: Page, check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Reload the page until `check` holds (for what the page shows only on load)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for the page to show {what}")
        time.sleep(0.5)
        page.reload()


def test_log_in_switch_language_and_log_out(page: Page, stack: Stack, shots: Path) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))  # the console needs a login
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shoot(page, shots, "01-login")

    page.get_by_label("Username").fill(MANAGER)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page.get_by_label("Username")).to_have_value(MANAGER)

    log_in(page, MANAGER)
    # Keyboard only: the first Tab reaches the skip link, which moves focus past the menu to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    nav = main_nav(page)
    expect(nav.get_by_role("link")).to_have_text(MANAGER_NAV)  # a manager does not see the audit log
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    shoot(page, shots, "02-dashboard")

    # Choosing a language in the header switches at once (the select submits itself) and is remembered.
    page.get_by_label("Language").select_option(label="简体中文")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    if TRANSLATIONS.is_dir():
        links = nav.get_by_role("link")
        expect(links).to_have_count(len(MANAGER_NAV))
        for i, english in enumerate(MANAGER_NAV):
            expect(links.nth(i)).not_to_have_text(english)
        expect(page.get_by_role("heading", level=1)).not_to_have_text("Dashboard")
    shoot(page, shots, "03-dashboard-zh-CN")

    page.locator("header").get_by_role("combobox").select_option(label="English")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(nav.get_by_role("link", name="People", exact=True)).to_be_visible()

    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.goto("/people")
    expect(page).to_have_url(re.compile(r"/login"))


def test_log_out_everywhere_ends_the_other_browsers_session(page: Page, browser: Any, stack: Stack) -> None:
    other = browser.new_context(base_url=stack.url)
    try:
        elsewhere = other.new_page()
        log_in(elsewhere, MANAGER)
        log_in(page, MANAGER)
        page.get_by_role("button", name="Log out everywhere").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
        expect(page.get_by_role("status")).to_contain_text("logged out on every device")
        elsewhere.goto("/people")
        expect(elsewhere).to_have_url(re.compile(r"/login"))
    finally:
        other.close()


def test_resident_card_consent_photo_withdrawal(page: Page, stack: Stack, shots: Path) -> None:
    log_in(page, ADMIN)
    expect(main_nav(page).get_by_role("link")).to_have_text(NAV)

    # People: the list, then a new resident.
    main_nav(page).get_by_role("link", name="People", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("People")
    shoot(page, shots, "04-people")
    page.goto("/people/new")
    page.get_by_label("Full name").fill(RESIDENT)
    site = page.get_by_label("Site")
    site.select_option(value=site.locator("option", has_text=SITE_NAME).get_attribute("value"))
    page.get_by_label("Kind").select_option(label="resident")
    page.get_by_label("Unit").fill("3-402")
    page.get_by_label("Date of birth").fill("1988-04-12")
    page.get_by_label("Phone").fill("+86 138 0000 0402")
    expect(page.get_by_role("checkbox", name=GROUP_NAME)).to_be_checked()  # the usual group, ticked
    page.get_by_role("button", name="Create person").click()
    expect(page).to_have_url(re.compile(r"/people/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(RESIDENT)
    person_id = int(page.url.rsplit("/", 1)[1])
    person = stack.person(person_id)
    assert (person.full_name, person.site_id) == (RESIDENT, stack.site_id)
    pseudonym = person.pseudonym
    # The page answers the manager's questions in order: can they get in, then their credentials.
    for section in ("Can this person get in?", "Credentials"):
        expect(page.get_by_role("heading", level=2, name=section)).to_be_visible()
    for kind in ("Access groups", "Key card", "ID document", "App code", "Face"):
        expect(page.get_by_role("heading", level=3, name=kind)).to_be_visible()
    expect(part(page, "access")).to_contain_text("Opens no door now")
    shoot(page, shots, "05-person-new")

    # Access: the create form offered the site's usual group, ticked, so the resident joined it in the same step.
    expect(part(page, "access").locator("li[data-group]")).to_contain_text(GROUP_NAME)
    assert [g.id for g in stack.person(person_id).access_groups] == [stack.group_id]

    # A key card typed in: the console never shows the UID back, and the terminal opens for it once synced.
    page.get_by_label("Card UID").fill(CARD)
    page.get_by_role("button", name="Add card").click()
    expect(credential(page, "card").locator("[data-credential]")).to_have_count(1)
    expect(part(page, "access")).to_contain_text("Opens 1 door now")  # a group with the gate, and a card
    assert CARD not in page.content() and CARD.lower() not in page.content()
    assert [c.kind.value for c in stack.person(person_id).credentials] == ["card"]
    at_door(stack, CARD.lower(), "granted", "the typed card opening the gate")

    # A second card read at the terminal: the console arms a capture there and shows its progress live.
    credential(page, "card").get_by_text("Or read the card at a terminal").click()
    page.get_by_label("Terminal", exact=True).select_option(label=TERMINAL_NAME)
    page.get_by_role("button", name="Read card at terminal").click()
    status = page.locator("#capture-status")
    expect(status).to_have_attribute("aria-live", "polite")
    at_door(stack, READ_CARD, "captured", "the terminal reading the card for the console")
    expect(status.locator("[data-final]")).to_be_visible(timeout=30_000)
    expect(status.get_by_role("alert")).to_have_count(0)  # the capture did not fail
    shoot(page, shots, "06-person-card-read")
    wait_for(lambda: len(stack.person(person_id).credentials) == 2, what="the read card enrolled")
    at_door(stack, READ_CARD, "granted", "the read card opening the gate")
    page.reload()
    expect(credential(page, "card").locator("[data-credential]")).to_have_count(2)
    assert READ_CARD.upper() not in page.content() and READ_CARD not in page.content()

    # Face: face is switched on for the site; the notice is shown before consent is recorded.
    face = credential(page, "face")
    expect(face).to_contain_text("Maple Court Property Management Ltd.")  # the notice's controller
    expect(page.get_by_role("button", name="Upload photo")).to_have_count(0)  # no photo before consent
    shoot(page, shots, "07-person-before-consent")
    face.get_by_role("group", name="Given by").get_by_role("radio", name="the person").check()
    page.get_by_role("button", name="Record consent").click()
    expect(page.get_by_label("Photo")).to_be_visible()
    assert len(stack.person(person_id).consents) == 1

    photo = photos_of(people_with(3)[0])[0]
    page.get_by_label("Photo").set_input_files(str(photo))
    page.get_by_role("button", name="Upload photo").click()
    verdict = page.get_by_role("status").filter(has_text="Template stored")
    expect(verdict).to_be_visible(timeout=60_000)
    expect(verdict).to_contain_text("not kept")  # the photo is used once and dropped
    expect(verdict.locator("li[data-gate]")).not_to_have_count(0)  # each quality check: pass or fail, with its bar
    shoot(page, shots, "08-person-photo-accepted")
    assert len(stack.person(person_id).face_templates) == 1

    # The template reaches the real terminal, and the console lists the terminal as holding it.
    wait_for(lambda: holds_template(stack, pseudonym), timeout=60, what="template on the terminal")
    wait_for(lambda: stack.face_status().get("templates") == 1, timeout=30, what="template in the gallery")
    reload_until(page, lambda: TERMINAL_NAME in credential(page, "face").inner_text(), "the terminal holding it")
    shoot(page, shots, "09-person-enrolled")

    # Withdrawal: confirm the dialog; the receipt region updates by itself until every terminal confirmed.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Withdraw consent and erase face data").click()
    receipt = page.get_by_role("region", name="Erasure receipt")
    expect(receipt).to_be_visible()
    expect(receipt).to_contain_text("All terminals confirmed", timeout=60_000)
    assert not holds_template(stack, pseudonym)
    assert stack.face_status().get("templates") == 0
    assert stack.person(person_id).face_templates == []
    shoot(page, shots, "10-erasure-receipt")
    # The card is untouched by the face withdrawal.
    assert stack.present_card(CARD.lower()).get("granted") is True

    # The other main pages, with what this test did on them.
    main_nav(page).get_by_role("link", name="Terminals", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(TERMINAL_NAME)
    shoot(page, shots, "11-terminals")
    main_nav(page).get_by_role("link", name="Events", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    reload_until(page, lambda: RESIDENT in page.get_by_role("main").inner_text(), "the card's entry event")
    shoot(page, shots, "12-events")
    main_nav(page).get_by_role("link", name="Privacy", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(page, shots, "13-privacy")
    main_nav(page).get_by_role("link", name="People", exact=True).click()
    expect(page.get_by_role("main")).to_contain_text(RESIDENT)
    shoot(page, shots, "14-people-after")


def at_door(stack: Stack, uid: str, outcome: str, what: str, timeout: float = 30.0) -> None:
    """Present a card every half second (each one is a real decision and event) until the terminal's answer
    has `outcome` set, i.e. until the change made in the console has reached the terminal."""
    deadline = time.monotonic() + timeout
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = stack.present_card(uid)
        if answer.get(outcome) is True:
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last answer {answer}")


def part(page: Page, name: str) -> Locator:
    """A part of the person page: access, credentials, app, history or privacy."""
    return page.locator(f'section[data-section="{name}"]')


def credential(page: Page, kind: str) -> Locator:
    """One credential's card on the person page: card, id_document, app_code or face."""
    return page.locator(f'section[data-kind="{kind}"]')


def holds_template(stack: Stack, pseudonym: str) -> bool:
    """Whether the terminal's own store holds a face template for this person."""
    try:
        record: Any = stack.terminal.person(pseudonym)
    except Exception:  # the store may be mid-write
        return False
    return record is not None and len(record.templates) > 0
