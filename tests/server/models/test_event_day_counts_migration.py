"""Migration 0014 fills the daily event counts from the events a database already holds."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from flask_migrate import upgrade
from sqlalchemy import insert, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.app import MIGRATIONS_DIR, create_app
from server.extensions import db
from server.models import AccessEvent, EventDayCount
from server.services.access import sites
from tests.conftest import TEST_ACTOR, server_config
from tests.server.models.test_migrations import empty_db_url  # noqa: F401 - the fixture


def test_the_migration_counts_the_events_already_stored(empty_db_url, key_dir, keys):  # noqa: F811
    app = create_app(server_config(empty_db_url, key_dir), keys=keys)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0013eventcounts")
        york = sites.create_site(db.session, TEST_ACTOR, code="york", name="York", timezone="America/New_York")
        east = sites.create_site(db.session, TEST_ACTOR, code="east", name="East", timezone="Asia/Shanghai")
        db.session.flush()
        gate = sites.save_door(db.session, TEST_ACTOR, york, "Gate", sites.DoorMethods())
        db.session.commit()
        autumn = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # 01:30 EDT; an hour later 01:30 EST, the same day
        events = [
            (york, gate, autumn, Decision.GRANT, "granted"),
            (york, gate, autumn + timedelta(hours=1), Decision.GRANT, "granted"),
            (york, gate, autumn + timedelta(hours=23, minutes=31), Decision.GRANT, "granted"),  # 00:01 on the 3rd
            (york, None, autumn, Decision.DENY, "unknown"),
            (east, None, datetime(2025, 11, 2, 16, 0, tzinfo=UTC), Decision.DENY, "unknown"),  # the 3rd there
        ]
        db.session.execute(
            insert(AccessEvent),
            [
                {
                    "event_uid": str(uuid.uuid4()),
                    "site_id": site.id,
                    "door_id": door.id if door else None,
                    "method": EntryMethod.CARD,
                    "decision": decision,
                    "reason": reason,
                    "occurred_at": at,
                    "received_at": at,
                }
                for site, door, at, decision, reason in events
            ],
        )
        db.session.commit()
        york_id, east_id, gate_id = york.id, east.id, gate.id
        db.session.remove()
        upgrade(directory=MIGRATIONS_DIR)
        found = Counter(
            {
                (row.site_id, row.day, row.door_id, row.decision, row.reason, row.enrolled): row.count
                for row in db.session.scalars(select(EventDayCount))
            }
        )
        db.session.remove()
        db.engine.dispose()
    card = (Decision.GRANT, "granted", False)
    assert found == {
        (york_id, date(2025, 11, 2), gate_id, *card): 2,
        (york_id, date(2025, 11, 3), gate_id, *card): 1,
        (york_id, date(2025, 11, 2), 0, Decision.DENY, "unknown", False): 1,
        (east_id, date(2025, 11, 3), 0, Decision.DENY, "unknown", False): 1,
    }
