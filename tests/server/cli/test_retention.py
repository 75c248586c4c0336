"""`gatehouse retention run` and `gatehouse alarms list` on a migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gatehouse_core.wire.messages import Decision, EntryMethod
from server.app import create_app
from server.cli.main import main
from server.config import load_server_config
from server.extensions import db
from server.models import (
    AccessEvent,
    AuditEntry,
    ErasureConfirmation,
    ErasureReason,
    ErasureReceipt,
    utcnow,
)
from server.services.access import sites
from server.services.access.sites import DoorMethods
from server.services.audit import Actor
from server.services.terminals import terminals

ACTOR = Actor("t")


def run(*args: str) -> tuple[int, str]:
    """Exit code and what went to stdout (logs and errors go to stderr)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def refused(*args: str) -> tuple[int, str]:
    """Exit code and what went to stderr."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.fixture
def seeded(config: Path) -> Path:
    """Sites oak (3 old events, 1 recent; an erasure a terminal has not confirmed for 2 days) and elm (empty)."""
    app = create_app(load_server_config(config))
    with app.app_context():
        oak = sites.create_site(db.session, ACTOR, code="oak", name="Oak Park")
        sites.create_site(db.session, ACTOR, code="elm", name="Elm Court")
        door = sites.save_door(db.session, ACTOR, oak, "Gate", DoorMethods())
        gate = terminals.provision_terminal(db.session, ACTOR, oak, "Front gate", [door]).terminal
        db.session.flush()
        now = utcnow()
        for days in (200, 120, 91, 3):
            db.session.add(
                AccessEvent(
                    event_uid=str(uuid.uuid4()),
                    site_id=oak.id,
                    door_id=door.id,
                    method=EntryMethod.CARD,
                    decision=Decision.GRANT,
                    reason="ok",
                    occurred_at=now - timedelta(days=days),
                )
            )
        db.session.add(
            ErasureReceipt(
                site_id=oak.id,
                person_pseudonym="p-0123456789abcdef",
                template_id=7,
                model_id="m",
                reason=ErasureReason.CONSENT_WITHDRAWN,
                journal_seq=1,
                erased_on_server_at=now - timedelta(days=2),
                confirmations=[ErasureConfirmation(terminal_id=gate.id)],
            )
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return config


def stored(config: Path) -> tuple[int, int]:
    """Access events and retention audit entries in the database."""
    app = create_app(load_server_config(config))
    with app.app_context():
        events = db.session.scalar(select(func.count()).select_from(AccessEvent)) or 0
        purges = db.session.scalar(select(func.count()).where(AuditEntry.action == "retention.purge")) or 0
        db.session.remove()
        db.engine.dispose()
    return events, purges


def test_retention_run_prints_per_site_figures_and_is_idempotent(seeded: Path) -> None:
    code, output = run("retention", "run", "--config", str(seeded))
    assert code == 0, output
    lines = output.strip().splitlines()
    assert lines == [
        "elm: events purged 0, passes purged 0, templates erased 0, alarms raised 0",
        "oak: events purged 3, passes purged 0, templates erased 0, alarms raised 1",
    ]
    assert stored(seeded) == (1, 1)
    code, output = run("retention", "run", "--config", str(seeded))
    assert code == 0 and "oak: events purged 0, passes purged 0, templates erased 0, alarms raised 0" in output
    assert stored(seeded) == (1, 1)


def test_retention_run_for_one_site(seeded: Path) -> None:
    code, output = run("retention", "run", "--config", str(seeded), "--site", "elm")
    assert code == 0 and output.strip() == "elm: events purged 0, passes purged 0, templates erased 0, alarms raised 0"
    assert stored(seeded) == (4, 0)
    code, output = refused("retention", "run", "--config", str(seeded), "--site", "nope")
    assert code == 2 and "no site with code 'nope'" in output


def test_alarms_list(seeded: Path) -> None:
    code, output = run("alarms", "list", "--config", str(seeded))
    assert code == 0 and output.strip() == "no open alarms"
    run("retention", "run", "--config", str(seeded))
    code, output = run("alarms", "list", "--config", str(seeded))
    assert code == 0
    (line,) = output.strip().splitlines()
    assert "[oak] erasure_overdue:" in line and "Front gate (t-" in line and "p-0123456789abcdef" in line
    code, output = run("alarms", "list", "--config", str(seeded), "--site", "elm")
    assert code == 0 and output.strip() == "no open alarms"
    code, output = refused("alarms", "list", "--config", str(seeded), "--site", "nope")
    assert code == 2 and "no site with code 'nope'" in output


def test_commands_refuse_a_database_that_is_not_upgraded(tmp_path: Path, key_dir: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "empty.db"}"\nkey_dir = "{key_dir}"\n')
    for command in (("retention", "run"), ("alarms", "list")):
        code, output = refused(*command, "--config", str(path))
        assert code == 2 and "gatehouse db upgrade" in output
