"""Migration 0014 fills the daily event counts from the events a database already holds."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask_migrate import upgrade
from sqlalchemy import column, insert, select
from sqlalchemy import table as sa_table

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.app import MIGRATIONS_DIR, create_app
from server.extensions import db
from server.models import EventDayCount
from tests.conftest import server_config
from tests.server.models.test_migrations import empty_db_url  # noqa: F401 - the fixture


@dataclass(frozen=True)
class Row:
    """A row's id, as the test refers to sites and doors."""

    id: int


def _site(code: str, name: str, timezone: str) -> dict[str, Any]:
    """A site's columns as they were at revision 0013."""
    settings = dict(minor_age=14, face_enabled=False, no_face_for_minors=True, app_face_enrollment=False)
    retention = dict(event_retention_days=90, visitor_retention_days=30, template_unused_days=365)
    return dict(
        code=code,
        name=name,
        timezone=timezone,
        **settings,
        **retention,
        erasure_alarm_hours=24,
        journal_seq=0,
        published_seq=0,
        created_at=datetime.now(UTC),
    )


def _door(site_id: int, name: str) -> dict[str, Any]:
    """A door's columns as they were at revision 0013."""
    methods = dict(accepts_face=False, accepts_card=True, accepts_id_document=True, accepts_app_code=True)
    return dict(site_id=site_id, name=name, **methods, created_at=datetime.now(UTC))


def _insert(name: str, values: dict[str, Any]) -> int:
    """Insert one row into the table `name` with exactly these columns; its id."""
    table = sa_table(name, *(column(key) for key in values), column("id"))
    new_id: int = db.session.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()
    return new_id


def test_the_migration_counts_the_events_already_stored(empty_db_url, key_dir, keys):  # noqa: F811
    app = create_app(server_config(empty_db_url, key_dir), keys=keys)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0013eventcounts")
        # Rows as the schema stood at 0013 (the models may have grown columns since): plain tables, no ORM.
        york = Row(_insert("sites", _site("york", "York", "America/New_York")))
        east = Row(_insert("sites", _site("east", "East", "Asia/Shanghai")))
        gate = Row(_insert("doors", _door(york.id, "Gate")))
        db.session.commit()
        autumn = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # 01:30 EDT; an hour later 01:30 EST, the same day
        events = [
            (york, gate, autumn, Decision.GRANT, "granted"),
            (york, gate, autumn + timedelta(hours=1), Decision.GRANT, "granted"),
            (york, gate, autumn + timedelta(hours=23, minutes=31), Decision.GRANT, "granted"),  # 00:01 on the 3rd
            (york, None, autumn, Decision.DENY, "unknown"),
            (east, None, datetime(2025, 11, 2, 16, 0, tzinfo=UTC), Decision.DENY, "unknown"),  # the 3rd there
        ]
        for site, door, at, decision, reason in events:
            row = {
                "event_uid": str(uuid.uuid4()),
                "site_id": site.id,
                "door_id": door.id if door else None,
                "method": EntryMethod.CARD.value,
                "decision": decision.value,
                "reason": reason,
                "occurred_at": at.replace(tzinfo=None),  # stored as naive UTC, as UTCDateTime does
                "received_at": at.replace(tzinfo=None),
            }
            _insert("access_events", row)
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
