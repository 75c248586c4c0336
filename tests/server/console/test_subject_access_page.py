"""The subject access page on the console's design system: each erasure says how far the terminals are, in words
and a badge (never colour alone)."""

from __future__ import annotations

import re

from server.models import ConsoleRole
from tests.conftest import login
from tests.server.services.test_subject_access import populate


def test_erasures_say_how_far_the_terminals_are(client, keys, make_user) -> None:
    subject = populate(keys)
    make_user("officer", ConsoleRole.MANAGER)
    login(client, "officer")
    page = client.get(f"/people/{subject.person_id}/subject-access").text
    cells = re.findall(r'<td data-erasure="(ok|pending|bad)">(.*?)</td>', page, re.S)
    assert cells, "the page lists the erasure"
    for kind, cell in cells:
        assert f'data-badge="{"pending" if kind == "bad" else kind}"' in cell
        words = re.sub(r"<[^>]+>", " ", cell)
        assert ("confirmed by" in words or "yes" in words) if kind == "ok" else "waiting for" in words
        assert ("overdue" in words) == (kind == "bad")
    assert 'class="card"' in page and "page-header" in page
