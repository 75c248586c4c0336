"""Console languages (Flask-Babel): English and Simplified Chinese, chosen per user."""

from __future__ import annotations

from babel import Locale
from flask import Flask, request
from flask_babel import Babel, get_locale
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
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, html_lang=html_lang, get_locale=get_locale)
