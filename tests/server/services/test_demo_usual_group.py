"""The demo site marks Residents as its usual group, so the console never offers 'Cleaning staff' first."""

from __future__ import annotations

from server.extensions import db
from server.ops.demo_seed import seed_demo
from server.services.access.usual_group import usual_group


def test_the_demo_marks_residents_as_usual(app, keys):
    site = seed_demo(db.session, keys)
    db.session.commit()
    group = usual_group(db.session, site)
    assert group is not None and group.name == "Residents" and group.usual
