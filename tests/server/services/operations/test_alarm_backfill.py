"""Migration 0015 turns the terminal alarm events of the last 7 days into open alarms: nothing that alarmed is lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flask_migrate import upgrade
from sqlalchemy import column, insert, select
from sqlalchemy import table as sa_table

from server.app import MIGRATIONS_DIR, create_app
from server.extensions import db
from server.models import Alarm, AlarmKind, AlarmSeverity
from tests.conftest import server_config
from tests.server.models.test_event_day_counts_migration import _door, _insert, _site
from tests.server.models.test_migrations import empty_db_url  # noqa: F401 - the fixture

EVENT_COLUMNS = ("event_uid", "site_id", "door_id", "method", "decision", "reason", "occurred_at", "received_at")


def test_recent_terminal_alarm_events_become_open_alarms(empty_db_url, key_dir, keys):  # type: ignore[no-untyped-def]  # noqa: F811
    app = create_app(server_config(empty_db_url, key_dir), keys=keys)
    now = datetime.now(UTC)
    uids = {name: str(uuid.uuid4()) for name in ("forced", "lockout", "odd", "old", "granted")}
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0014eventdaycounts")
        site_id = _insert("sites", _site("york", "York", "America/New_York"))
        gate_id = _insert("doors", _door(site_id, "Gate"))
        events = sa_table("access_events", *(column(name) for name in EVENT_COLUMNS))
        rows = [
            (uids["forced"], "alarm", "door_forced", now - timedelta(hours=1)),
            (uids["lockout"], "alarm", "brute_force", now - timedelta(days=6)),
            (uids["odd"], "alarm", "reader_gone", now - timedelta(days=1)),
            (uids["old"], "alarm", "door_forced", now - timedelta(days=8)),  # older than the dashboard showed
            (uids["granted"], "grant", "granted", now),
        ]
        db.session.execute(
            insert(events),
            [
                dict(
                    zip(
                        EVENT_COLUMNS,
                        (
                            uid,
                            site_id,
                            gate_id,
                            "card",
                            decision,
                            reason,
                            at.replace(tzinfo=None),
                            at.replace(tzinfo=None),
                        ),
                        strict=True,
                    )
                )
                for uid, decision, reason, at in rows
            ],
        )
        db.session.commit()
        db.session.remove()
        upgrade(directory=MIGRATIONS_DIR)
        found = {
            a.ref: (a.kind, a.severity, a.door_id, a.site_id, a.resolved_at) for a in db.session.scalars(select(Alarm))
        }
        messages = [a.message for a in db.session.scalars(select(Alarm))]
        db.session.remove()
        db.engine.dispose()
    assert found == {
        uids["forced"]: (AlarmKind.DOOR_FORCED, AlarmSeverity.CRITICAL, gate_id, site_id, None),
        uids["lockout"]: (AlarmKind.KEYPAD_LOCKOUT, AlarmSeverity.WARNING, gate_id, site_id, None),
        uids["odd"]: (AlarmKind.TERMINAL_ALARM, AlarmSeverity.WARNING, gate_id, site_id, None),
    }
    assert all("Gate" in message for message in messages)
