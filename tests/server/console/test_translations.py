"""The console's Chinese catalogue covers every marked string, keeps placeholders, and is compiled."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import csrf_token, login
from tests.support import REPO

ROOT = REPO
CATALOGUE = ROOT / "server/console/translations/zh_CN/LC_MESSAGES"
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
# As babel.cfg: the console, and the services' sentences for staff (server/services/wording/operators.py).
_METHODS = [
    ("server/console/**.py", "python"),
    ("server/services/wording/**.py", "python"),
    ("server/console/templates/**.html", "jinja2"),
]


def _source_messages() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=_METHODS, keywords=_KEYWORDS
    ):
        # A plural entry is keyed by its singular msgid (msgid_plural is not a key of its own).
        found.add(message if isinstance(message, str) else message[0])
    return found


def _hashable(value):
    """Plural entries come back from read_mo as lists and from read_po as tuples."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _po():
    with (CATALOGUE / "messages.po").open("rb") as handle:
        return read_po(handle, locale="zh_CN")


def test_every_console_string_has_a_chinese_translation():
    catalogue = _po()
    missing = sorted(
        msgid
        for msgid in _source_messages()
        if msgid not in catalogue or not catalogue[msgid].string or catalogue[msgid].fuzzy
    )
    assert missing == [], f"untranslated (run scripts/i18n.sh update, translate, then compile): {missing[:20]}"


def test_translations_keep_every_placeholder():
    for message in _po():
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(_PLACEHOLDER.findall(ids[0]))
        for text in strings:
            assert set(_PLACEHOLDER.findall(text)) == wanted, f"placeholders differ in {ids[0]!r}"


def test_compiled_catalogue_matches_the_po_file():
    with (CATALOGUE / "messages.mo").open("rb") as handle:
        compiled = {_hashable(m.id): _hashable(m.string) for m in read_mo(handle) if m.id}
    source = {_hashable(m.id): _hashable(m.string) for m in _po() if m.id and m.string and not m.fuzzy}
    assert compiled == source, "run scripts/i18n.sh compile"


@pytest.mark.parametrize(("language", "text"), [("en", "Log out everywhere"), ("zh_CN", "在所有设备上退出")])
def test_a_user_sees_the_console_in_their_language(client, make_user, language, text):
    make_user("manager1")
    login(client, "manager1")
    page = client.get("/")
    client.post("/language", data={"language": language, "csrf_token": csrf_token(page.text)})
    assert text in client.get("/").text
