"""Red team follow-up to issue 18 item 2: a stolen terminal claims a sequence far beyond the site's journal.

The publisher used to believe such a birth (it is what a server restored from an old backup sees) and moved the
site's journal past it. Then every other terminal of the site stood behind a gap and needed a full snapshot, each
within its own budget, so one forged birth a window made the whole site's terminals wait for their revocations.
Now the claim resets only the terminal that made it (a snapshot within its budget, which sets its sequence back to
the journal's); the journal stays where it is and the other terminals keep taking live deltas. A terminal that was
really ahead of a restored database is caught as well, by the roster-hash check after its catch-up.
"""

# ruff: noqa: F811  (pytest passes the imported fixture by name)
from __future__ import annotations

from typing import Any

from server.extensions import db
from server.services.people import people
from tests.conftest import TEST_ACTOR
from tests.server.link.test_snapshots import head, publisher_for, site_of_two, wrong_birth  # noqa: F401 (fixture)

FAR_AHEAD = 2**31 - 1  # the largest sequence the wire allows


def test_a_forged_future_sequence_resets_only_the_terminal_that_claimed_it(site_of_two: dict[str, Any], keys: Any):
    site, a, b = site_of_two["site"], site_of_two["A"], site_of_two["B"]
    publisher, recorder, _ = publisher_for(keys)
    before = head(site)

    answer = publisher.answer_birth(db.session, a, wrong_birth(a, FAR_AHEAD))
    db.session.commit()
    assert answer.action == "snapshot"
    assert head(site) == before, "one terminal's word moved the whole site's journal"
    assert site.journal_seq == before
    while publisher.advance_snapshots(db.session):
        pass
    in_sync = [body for kind, body in recorder.of(a.ident) if kind == "in_sync"]
    assert in_sync and in_sync[-1]["seq"] == before  # the claimant is set back to the journal's sequence

    # The other terminal is untouched: a revocation reaches it as a live delta continuing from where it stands.
    recorder.messages.clear()
    people.deactivate(db.session, TEST_ACTOR, site_of_two["residents"][0])
    db.session.commit()
    assert publisher.publish_pending(db.session)
    deltas = [body for kind, body in recorder.of(b.ident) if kind == "delta"]
    assert len(deltas) == 1 and deltas[0]["base_seq"] == before
