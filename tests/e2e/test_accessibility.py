"""Accessibility of every console page in a real browser: axe-core's WCAG 2.1 A/AA rules on each main page (in
English and Chinese), keyboard use (tab order, skip link, every control reachable, focus visible) and form
errors a screen reader announces.

The console here is light: waitress serving create_app on a fresh SQLite file seeded through the services
(no broker, worker or terminal process), so the pages are full without the e2e stack."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from gatehouse_core.keyring import ServerKeys
from server.app import create_app
from server.extensions import db
from server.models import ConsoleRole, Person, PrivacyNotice, Site
from server.services.access import access
from server.services.accounts import users
from tests.conftest import PASSWORD, TEST_ACTOR, server_config
from tests.e2e.conftest import LiveServer
from tests.server.services.test_subject_access import populate

pytestmark = [pytest.mark.integration]

ADMIN = "admin"
ADMIN_ZH = "admin.zh"  # switches to Chinese; a user's language is remembered, so the others keep English
GUARD = "guard1"
# axe-core rules for WCAG 2.0 and 2.1, levels A and AA, plus its best practices (reported; see STRUCTURE).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}
# Best-practice rules the console promises regardless of their impact: one h1, headings in order, one main.
STRUCTURE = {"page-has-heading-one", "heading-order", "landmark-one-main", "empty-heading", "empty-table-header"}
AXE = Axe()
ZH_LANG = "zh-CN"  # the short BCP 47 tag screen readers pick a Mandarin voice for


@dataclass
class Console:
    """The served console and the ids of what the seed made."""

    url: str
    site_id: int
    person_id: int  # has a card, an app code, consent and a face template
    newcomer_id: int  # no consent yet: the person page shows the notice and the consent form
    door_id: int
    group_id: int
    terminal_id: int
    notice_version: int


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, key_dir: Path, keys: ServerKeys) -> Iterator[Console]:
    """The console on a seeded SQLite file, served by waitress on a free port for this module."""
    base = tmp_path_factory.mktemp("a11y")
    app = create_app(server_config(f"sqlite:///{base / 'gatehouse.db'}", key_dir), keys=keys)
    with app.app_context():
        db.create_all()
        subject = populate(keys)  # a face site, door, terminal, group, resident with every record, events, audit
        site = db.session.get(Site, subject.site_id)
        assert site is not None
        newcomer = db.session.scalar(select(Person).where(Person.full_name == "Someone Else"))
        assert newcomer is not None
        newcomer.date_of_birth = date(1991, 3, 9)
        access.add_holiday(db.session, TEST_ACTOR, site, date.today() + timedelta(days=30), "Spring Festival")
        for username, role in ((ADMIN, ConsoleRole.ADMIN), (ADMIN_ZH, ConsoleRole.ADMIN), (GUARD, ConsoleRole.GUARD)):
            users.create_user(db.session, TEST_ACTOR, username, PASSWORD, role)
        db.session.commit()
        notice = db.session.get(PrivacyNotice, subject.notice_id)
        assert notice is not None
        made = Console(
            url="",
            site_id=subject.site_id,
            person_id=subject.person_id,
            newcomer_id=newcomer.id,
            door_id=subject.door_id,
            group_id=subject.group_id,
            terminal_id=subject.terminal_id,
            notice_version=notice.version,  # the notice's URL names its version
        )
        db.session.remove()
    server = LiveServer(app)
    server.start()
    made.url = server.url
    try:
        yield made
    finally:
        server.close()
        with app.app_context():
            db.engine.dispose()


def new_context(browser: Browser, console: Console) -> BrowserContext:
    """A fresh browser context (own cookies) on the console."""
    context = browser.new_context(base_url=console.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return context


def log_in(page: Page, username: str) -> None:
    """Log in through the form and land on the dashboard."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


@pytest.fixture(scope="module")
def admin(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """A browser context logged in as an admin, shared by the page sweeps."""
    context = new_context(browser, console)
    log_in(context.new_page(), ADMIN)
    yield context
    context.close()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh, logged-out browser context and page (this module's own, on the light console)."""
    context = new_context(browser, console)
    try:
        yield context.new_page()
    finally:
        context.close()


# ---- axe ------------------------------------------------------------------------------------------------------


def describe(violations: list[dict[str, Any]]) -> str:
    """Every violation with its impact, help text and the elements it names."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"]:
            summary = node.get("failureSummary", "").replace("\n", " ")
            lines.append(f"    {', '.join(map(str, node['target']))}: {node['html'][:160]}  -- {summary[:300]}")
    return "\n".join(lines)


def audit(page: Page, what: str) -> list[dict[str, Any]]:
    """Run axe on the page as shown; fail on serious or critical WCAG violations and broken structure."""
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": [*WCAG_TAGS, "best-practice"]}})
    found: list[dict[str, Any]] = results.response["violations"]
    failing = [v for v in found if v["impact"] in FAILING_IMPACTS or v["id"] in STRUCTURE]
    assert not failing, f"{what} ({page.url}): axe found\n{describe(found)}"
    assert page.locator("h1").count() == 1, f"{what}: a page has exactly one h1"
    if found:  # minor and moderate findings are reported, not failed
        print(f"\n{what} ({page.url}): axe notes\n{describe(found)}")
    return found


def admin_pages(c: Console) -> list[tuple[str, str]]:
    """(name, path) of every main console page an admin uses."""
    return [
        ("dashboard", "/"),
        ("people", "/people"),
        ("people search", "/people?q=zhang"),
        ("new person", "/people/new"),
        ("person with face", f"/people/{c.person_id}"),
        ("person before consent", f"/people/{c.newcomer_id}"),
        ("edit person", f"/people/{c.person_id}/edit"),
        ("people import", "/people/import"),
        ("subject access", f"/people/{c.person_id}/subject-access"),
        ("doors", "/doors"),
        ("new door", "/doors/new"),
        ("edit door", f"/doors/{c.door_id}/edit"),
        ("groups", "/groups"),
        ("new group", "/groups/new"),
        ("edit group", f"/groups/{c.group_id}"),
        ("holidays", "/holidays"),
        ("passes", "/passes"),
        ("terminals", "/terminals"),
        ("terminal", f"/terminals/{c.terminal_id}"),
        ("events", "/events"),
        ("audit log", "/audit"),
        ("privacy", "/privacy"),
        ("privacy notice", f"/privacy/{c.site_id}/notices/{c.notice_version}"),
        ("new notice", f"/privacy/{c.site_id}/notices/new"),
    ]


def visit(page: Page, path: str) -> None:
    """Open a console page and check it answered."""
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
    page.wait_for_load_state("load")


def test_login_page_passes_axe(page: Page) -> None:
    visit(page, "/login")
    audit(page, "login")
    # A failed login shows its error in an alert; that state must pass too.
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit(page, "login with an error")


def test_every_admin_page_passes_axe(admin: BrowserContext, console: Console) -> None:
    page = admin.new_page()
    problems = []
    for name, path in admin_pages(console):
        visit(page, path)
        if name == "person before consent":  # the notice and the consent form are part of what is checked
            expect(page.get_by_role("button", name="Record consent")).to_be_visible()
        try:
            audit(page, name)
        except AssertionError as exc:  # collect every page's problems, then fail once with all of them
            problems.append(str(exc))
    page.close()
    assert not problems, "\n\n".join(problems)


def test_guard_pages_pass_axe(browser: Browser, console: Console) -> None:
    context = new_context(browser, console)
    try:
        page = context.new_page()
        log_in(page, GUARD)
        problems = []
        for name, path in [
            ("dashboard", "/"),
            ("passes", "/passes"),
            ("terminals", "/terminals"),
            ("events", "/events"),
        ]:
            visit(page, path)
            try:
                audit(page, f"guard {name}")
            except AssertionError as exc:
                problems.append(str(exc))
        assert not problems, "\n\n".join(problems)
    finally:
        context.close()


def test_pages_in_chinese_pass_axe(browser: Browser, console: Console) -> None:
    context = new_context(browser, console)
    try:
        page = context.new_page()
        log_in(page, ADMIN_ZH)
        page.get_by_label("Language").select_option(label="简体中文")  # the select submits itself
        expect(page.locator("html")).to_have_attribute("lang", ZH_LANG)
        problems = []
        chosen = {"dashboard", "people", "new person", "person before consent", "edit group", "privacy", "events"}
        for name, path in admin_pages(console):
            if name not in chosen:
                continue
            visit(page, path)
            expect(page.locator("html")).to_have_attribute("lang", ZH_LANG)
            try:
                audit(page, f"{name} (zh-CN)")
            except AssertionError as exc:
                problems.append(str(exc))
        assert not problems, "\n\n".join(problems)
    finally:
        context.close()


# ---- keyboard -------------------------------------------------------------------------------------------------


def focused(page: Page) -> str:
    """A short name for the element that has focus: its id, else tag and text."""
    name: str = page.evaluate(
        """() => { const el = document.activeElement;
                   if (!el || el === document.body) return "body";
                   return el.id ? "#" + el.id : el.tagName.toLowerCase() + ":" + (el.textContent || "").trim(); }"""
    )
    return name


def test_login_by_keyboard(page: Page) -> None:
    visit(page, "/login")
    expect(page.get_by_label("Username")).to_be_focused()  # the form is ready to type into
    # From the top of the page: the skip link, then username, password and the button, in that order.
    page.get_by_role("link", name="Skip to content").focus()
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == ["#username", "#password", "button:Log in"], order
    # Type the credentials with the keyboard only and press Enter on the button.
    page.get_by_label("Username").focus()
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Log in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def test_skip_link_moves_focus_to_the_content(admin: BrowserContext) -> None:
    page = admin.new_page()
    visit(page, "/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # shown when focused, not left off-screen
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is inside the content, past the menu
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")
    page.close()


# Marks every element a keyboard user should be able to reach (rendered, enabled, not taken out of the tab
# order; one stop per radio group, as browsers do) and returns the keys Tab should visit.
MARK_FOCUSABLE = """() => {
  const selector = 'a[href], button, input, select, textarea, summary, [tabindex], [contenteditable="true"]';
  const keys = new Set();
  let n = 0;
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || el.type === "hidden" || el.getAttribute("tabindex") === "-1") continue;
    if (el.getClientRects().length === 0 || getComputedStyle(el).visibility === "hidden") continue;
    if (el.closest("details:not([open])") && el.tagName !== "SUMMARY") continue;
    if (el.tagName === "SUMMARY" && el.parentElement.tagName !== "DETAILS") continue;
    const key = el.type === "radio" ? "radio:" + el.name : String(n++);
    el.setAttribute("data-a11y-stop", key);
    keys.add(key);
  }
  return [...keys];
}"""

# The focused element, and whether its focus is drawn: an outline with 3:1 contrast against the colour
# behind it on most sides (WCAG 1.4.11; sampled just outside the ring), Chromium's own two-tone ring, or a
# box shadow.
FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const linear = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * linear(c[0]) + 0.7152 * linear(c[1]) + 0.0722 * linear(c[2]);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const backdrop = (x, y) => {
    for (let e of document.elementsFromPoint(x, y)) {
      if (e === el || el.contains(e)) continue;
      for (; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c;
      }
    }
    return [255, 255, 255];
  };
  const s = getComputedStyle(el);
  let visible = s.boxShadow !== "none", contrast = null;
  if (s.outlineStyle === "auto") visible = true;
  else if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) {
    const ring = rgb(s.outlineColor), r = el.getBoundingClientRect();
    const out = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth) + 2;
    const points = [[r.left - out, r.top + r.height / 2], [r.right + out, r.top + r.height / 2],
                    [r.left + r.width / 2, r.top - out], [r.left + r.width / 2, r.bottom + out]]
      .filter(([x, y]) => x >= 0 && y >= 0 && x < innerWidth && y < innerHeight);
    const ratios = points.map(([x, y]) => ratio(ring, backdrop(x, y)));
    contrast = ratios.map((v) => v.toFixed(2)).join("/");
    // Most of the ring must stand out; a side may touch a neighbouring coloured button.
    visible = visible || ratios.filter((v) => v >= 3).length * 2 > ratios.length;
  }
  return {key: el.getAttribute("data-a11y-stop"), visible: visible, contrast: contrast,
          html: el.outerHTML.slice(0, 140)};
}"""

KEYBOARD_PAGES = ["person before consent", "person with face", "new group", "people", "privacy", "events", "dashboard"]


@pytest.mark.parametrize("name", KEYBOARD_PAGES)
def test_every_control_is_reachable_by_tab_and_shows_focus(admin: BrowserContext, console: Console, name: str) -> None:
    page = admin.new_page()
    visit(page, dict(admin_pages(console))[name])
    expected = set(page.evaluate(MARK_FOCUSABLE))
    assert len(expected) > 5, f"{name}: the page has links and controls"
    page.get_by_role("link", name="Skip to content").focus()  # start from the top of the page
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    reached: set[str] = set()
    unseen: list[str] = []
    last = None
    for i in range(len(expected) * 4 + 30):
        if i:
            page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        if state is None:
            continue
        key = state["key"]
        if key is None:  # a stop the sweep did not predict (a scrollable box, say): it must still show focus
            key = f"other:{state['html']}"
        if key == last:
            continue  # date and time inputs take one Tab per part (day, month, year, picker button)
        if key in reached:
            break  # wrapped round to the top
        reached.add(key)
        last = key
        if not state["visible"]:
            unseen.append(f"focus not visible (outline contrast {state['contrast']}): {state['html']}")
    missing = expected - reached
    described = [
        page.locator(f'[data-a11y-stop="{key}"]').first.evaluate("(el) => el.outerHTML.slice(0, 140)")
        for key in sorted(missing)
    ]
    assert not missing, f"{name}: {len(missing)} of {len(expected)} controls never reached by Tab: {described}"
    assert not unseen, f"{name}:\n" + "\n".join(unseen)
    page.close()


# ---- form errors ----------------------------------------------------------------------------------------------


def test_empty_new_person_form_announces_its_errors(admin: BrowserContext) -> None:
    page = admin.new_page()
    visit(page, "/people/new")
    page.get_by_role("button", name="Create person").click()
    expect(page).to_have_url(re.compile(r"/people/new"))
    alert = page.get_by_role("alert").first
    expect(alert).to_be_visible()
    name = page.get_by_label("Full name")
    expect(name).to_have_attribute("aria-invalid", "true")
    error_id = name.get_attribute("aria-describedby")
    assert error_id, "the invalid field points at its error"
    error = page.locator(f"[id='{error_id.split()[-1]}']")
    expect(error).to_have_attribute("role", "alert")
    expect(name).to_have_accessible_description(re.compile(re.escape(error.inner_text().strip())))
    # The field with the error can be reached and fixed from the keyboard.
    name.focus()
    expect(name).to_be_focused()
    audit(page, "new person with errors")
    page.close()


# Forms submitted empty (the browser's own checks switched off, as for a user whose browser has none): each
# answers with its errors announced and tied to the fields, and that page passes axe too.
EMPTY_FORMS = [
    ("/doors/new", "Save door"),
    ("/groups/new", "Save access group"),
    ("/holidays", "Add holiday at Maple Court"),
    ("PRIVACY/notices/new", "Publish this version"),
    ("/people/import", "Check and import"),
]


def test_forms_submitted_empty_announce_their_errors(admin: BrowserContext, console: Console) -> None:
    page = admin.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm asks before publishing a notice
    problems = []
    for path, button_name in EMPTY_FORMS:
        visit(page, path.replace("PRIVACY", f"/privacy/{console.site_id}"))
        button = page.get_by_role("button", name=button_name, exact=True)
        form = button.locator("xpath=ancestor::form")
        for field in form.locator("input[type=text], input:not([type]), input[type=date], textarea").all():
            field.fill("")
        form.evaluate("(f) => { f.noValidate = true; }")
        button.click()
        page.wait_for_load_state("load")
        try:
            expect(page.get_by_role("alert").first).to_be_visible()
            invalid = page.locator("[aria-invalid='true']")
            if invalid.count():  # a per-field error is tied to its field
                described = invalid.first.get_attribute("aria-describedby")
                assert described, f"{path}: the invalid field has no aria-describedby"
            audit(page, f"{path} submitted empty")
        except AssertionError as exc:
            problems.append(f"{path}: {exc}")
    page.close()
    assert not problems, "\n\n".join(problems)


def test_success_message_passes_axe(admin: BrowserContext) -> None:
    page = admin.new_page()
    visit(page, "/holidays")
    page.get_by_label("Date").fill((date.today() + timedelta(days=60)).isoformat())
    page.get_by_label("Name").fill("Mid-Autumn Festival")
    page.get_by_role("button", name="Add holiday at Maple Court").click()
    expect(page.get_by_role("status").first).to_be_visible()  # the flash is announced politely
    expect(page.get_by_role("cell", name="Mid-Autumn Festival", exact=True)).to_be_visible()
    audit(page, "holidays after adding one")
    page.close()


# ---- reflow ---------------------------------------------------------------------------------------------------

# Elements of the content that stick out past the right edge of the window. Data tables are exempt (WCAG 1.4.10
# lets two-dimensional content scroll), as is what sits inside them.
OVERFLOWING = """() => {
  const found = [];
  for (const el of document.querySelectorAll("main *")) {
    if (el.closest("table") || el.getClientRects().length === 0) continue;
    const r = el.getBoundingClientRect();
    if (r.right > innerWidth + 1) found.push(el.outerHTML.slice(0, 120) + " ends at " + Math.round(r.right) + "px");
  }
  return found.slice(0, 5);
}"""


def test_pages_reflow_to_a_narrow_screen(admin: BrowserContext, console: Console) -> None:
    page = admin.new_page()
    page.set_viewport_size({"width": 320, "height": 640})  # 1280 px at 400 % zoom
    problems = []
    for name, path in admin_pages(console):
        visit(page, path)
        sticking_out = page.evaluate(OVERFLOWING)
        if sticking_out:
            problems.append(f"{name} ({path}) is wider than 320 px:\n  " + "\n  ".join(sticking_out))
    page.close()
    assert not problems, "\n".join(problems)
