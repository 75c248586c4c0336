"""Console languages (Flask-Babel): English and Simplified Chinese, chosen per user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel import Locale
from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale, get_translations
from flask_login import current_user

# Locale code → the language's own name, as the language switcher shows it.
LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LANGUAGE = "en"

babel = Babel()


def select_locale() -> str:
    """The logged-in user's language; before login, the browser's preference."""
    if current_user and current_user.is_authenticated and current_user.language in LANGUAGES:
        return str(current_user.language)
    # Accept-Language says zh-CN; Babel's catalogue is zh_CN.
    offered = {code.replace("_", "-"): code for code in LANGUAGES}
    best = request.accept_languages.best_match(list(offered), default=DEFAULT_LANGUAGE.replace("_", "-"))
    return offered.get(best or "", DEFAULT_LANGUAGE)


def html_lang(locale: str) -> str:
    """The BCP 47 tag for <html lang> (language-TERRITORY, e.g. zh-CN), so screen readers pick the right voice."""
    # Babel expands zh_CN to zh_Hans_CN; browsers and screen readers expect the short zh-CN.
    parsed = Locale.parse(locale)
    return "-".join(part for part in (parsed.language, parsed.territory) if part)


def init_i18n(app: Flask) -> None:
    """Attach Babel with the console's catalogues."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "console/translations")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    babel.init_app(app, locale_selector=select_locale)
    # Templates look up a hundred strings a page; Flask-Babel finds the catalogue afresh for each (about 50 us).
    # The request keeps the one it found, as Flask-Babel keeps the request's locale.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, html_lang=html_lang, get_locale=get_locale)


def label(table: Mapping[Any, Any], key: Any) -> str | None:
    """`table[key]` (a lazy translation) as text in this request's language, looked up once per request: a
    table of events or people shows the same few labels on every row. None when the key is not in the table."""
    if not has_request_context():
        found = table.get(key)
        return None if found is None else str(found)
    words: dict[tuple[int, Any], str | None] = request._get_current_object().__dict__.setdefault(  # type: ignore[attr-defined]
        "_gatehouse_labels", {}
    )
    at = (id(table), key)
    if at not in words:
        found = table.get(key)
        words[at] = None if found is None else str(found)
    return words[at]


def _translations() -> Any:
    """This request's catalogue, found once per request (outside a request, found each time)."""
    if not has_request_context():
        return get_translations()
    current = request._get_current_object()  # type: ignore[attr-defined]
    found = current.__dict__.get("_gatehouse_translations")
    if found is None:
        found = current.__dict__["_gatehouse_translations"] = get_translations()
    return found
