"""Screenshots of every main console page in both languages, both themes and at desk and phone widths, written to
screenshot_dir()/pages/<page>-<lang>-<theme>-<width>.png, with checks a screenshot alone would not catch: the
page answers (not a login redirect), has a visible h1, its <html lang> is the user's language, nothing overflows
the window sideways, the text colour follows the theme, and no script fails.

One browser; one context per (language, theme, width), kept while its pages run and created from a storage state
saved by one login per language (the Chinese admin switches through the console's language setting, which is
remembered per user). The theme is the browser's prefers-color-scheme, which the console follows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import ADMIN, ADMIN_ZH, Showcase, _console_message, screenshot_dir
from tests.e2e.pages import MAIN_PAGES, MainPage

pytestmark = [pytest.mark.integration]


@dataclass(frozen=True)
class Language:
    """A console language: the browser locale, the user who chose it, the html lang the console writes."""

    code: str  # in file names
    locale: str
    user: str
    html_lang: str
    setting: str  # the value of the console's language setting


LANGUAGES = [Language("en", "en-US", ADMIN, "en", "en"), Language("zh", "zh-CN", ADMIN_ZH, "zh-CN", "zh_CN")]
THEMES = ["light", "dark"]
WIDTHS = {1366: {"width": 1366, "height": 768}, 390: {"width": 390, "height": 844}}  # a laptop; an iPhone 12-15


@dataclass(frozen=True)
class Look:
    """One (language, theme, width) combination: one browser context."""

    language: Language
    theme: str
    width: int

    @property
    def key(self) -> str:
        """The part of the file name after the page's name."""
        return f"{self.language.code}-{self.theme}-{self.width}"


LOOKS = [Look(lang, theme, width) for lang in LANGUAGES for theme in THEMES for width in WIDTHS]
CASES = [pytest.param(look, main, id=f"{main.name}-{look.key}") for look in LOOKS for main in MAIN_PAGES]


def context_options(look: Look) -> dict[str, Any]:
    """Browser context options for a look (phone width as a touch device that honours the viewport meta tag)."""
    phone = look.width < 600
    return {
        "locale": look.language.locale,
        "color_scheme": look.theme,
        "viewport": WIDTHS[look.width],
        "is_mobile": phone,
        "has_touch": phone,
        "accept_downloads": False,
    }


class Tab:
    """A browser context with one page, and what its scripts reported since the last check."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page = context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        self.page.on("console", lambda msg: _console_message(self.problems, msg))

    def close(self) -> None:
        """Close the context and its page."""
        self.context.close()


class Contexts:
    """Logged-in contexts: one login per language (its storage state reused), one context open at a time, whose
    page goes from one console page to the next (a new page per screenshot costs a renderer each time)."""

    def __init__(self, browser: Browser, showcase: Showcase) -> None:
        self.browser = browser
        self.url = showcase.url
        self.states: dict[str, Any] = {}
        self.open: tuple[Look, Tab] | None = None

    def new(self, look: Look, state: Any = None) -> Tab:
        """A fresh context and page for the look (logged out unless a storage state is given)."""
        context = self.browser.new_context(base_url=self.url, storage_state=state, **context_options(look))
        context.set_default_timeout(15_000)
        return Tab(context)

    def _state(self, language: Language) -> Any:
        if language.code not in self.states:
            tab = self.new(Look(language, "light", 1366))
            page = tab.page
            page.goto("/login")
            page.locator("input[name=username]").fill(language.user)
            page.locator("input[name=password]").fill(PASSWORD)
            page.locator("form:has(input[name=password]) [type=submit]").click()
            expect(page).not_to_have_url(re.compile(r"/login"))
            if page.locator("html").get_attribute("lang") != language.html_lang:
                # The user's language setting, as a person changes it (the select submits on change).
                page.locator("select[name=language]").select_option(language.setting)
                expect(page.locator("html")).to_have_attribute("lang", language.html_lang)
            self.states[language.code] = tab.context.storage_state()
            tab.close()
        return self.states[language.code]

    def logged_in(self, look: Look) -> Tab:
        """The look's logged-in context and page (closing the previous look's)."""
        if self.open is not None and self.open[0] != look:
            self.open[1].close()
            self.open = None
        if self.open is None:
            self.open = (look, self.new(look, self._state(look.language)))
        self.open[1].problems.clear()
        return self.open[1]

    def close(self) -> None:
        """Close the open context."""
        if self.open is not None:
            self.open[1].close()
            self.open = None


@pytest.fixture(scope="module")
def contexts(browser: Browser, showcase: Showcase) -> Iterator[Contexts]:
    """This module's logged-in contexts."""
    made = Contexts(browser, showcase)
    try:
        yield made
    finally:
        made.close()


def luminance(css_colour: str) -> float:
    """Relative luminance (0 black .. 1 white) of a computed rgb()/rgba() colour."""
    parts = [float(p) for p in re.findall(r"[\d.]+", css_colour)[:3]]
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in parts]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize(("look", "main"), CASES)
def test_page_screenshot(contexts: Contexts, showcase: Showcase, look: Look, main: MainPage) -> None:
    tab = contexts.new(look) if main.public else contexts.logged_in(look)
    page: Page = tab.page
    try:
        path = main.url(showcase.person_id, showcase.terminal_id)
        response = page.goto(path)
        assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
        if not main.public:
            assert "/login" not in page.url, f"{path} sent the logged-in user to {page.url}"
        page.evaluate("document.fonts.ready.then(() => true)")
        folder = screenshot_dir() / "pages"
        folder.mkdir(exist_ok=True)
        shot = folder / f"{main.name}-{look.key}.png"
        # The picture first, so a page that fails a check below still leaves its screenshot to look at.
        page.screenshot(path=str(shot), full_page=True, animations="disabled", caret="hide")
        assert shot.stat().st_size > 0

        expect(page.locator("html")).to_have_attribute("lang", look.language.html_lang)
        heading = page.locator("h1").first
        expect(heading).to_be_visible()
        assert heading.inner_text().strip(), f"{path}: the h1 is empty"
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1] + 1, f"{path} is {widths[0]} px wide in a {widths[1]} px window"
        text = luminance(page.evaluate("getComputedStyle(document.body).color"))
        if look.theme == "dark":
            assert text > 0.4, f"{path}: body text is dark (luminance {text:.2f}) in the dark theme"
        else:
            assert text < 0.4, f"{path}: body text is light (luminance {text:.2f}) in the light theme"
        assert not tab.problems, "the browser reported problems:\n" + "\n".join(tab.problems)
    finally:
        if main.public:
            tab.close()
