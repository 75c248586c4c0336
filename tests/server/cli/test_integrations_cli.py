"""`gatehouse api-keys create|list|revoke` and `gatehouse webhooks add|list|remove|deliver --once` on a migrated
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result

from server.cli import integrations as cli_integrations
from server.cli.main import main
from server.services.integrations import api_keys


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)], catch_exceptions=False)


def test_the_scopes_offered_are_the_services(config: Path) -> None:
    assert cli_integrations.SCOPES == api_keys.SCOPES


def test_api_keys_and_webhooks_from_the_command_line(config: Path) -> None:
    created = _run(config, "api-keys", "create", "--name", "PMS", "--scope", "events:read", "--scope", "doors:read")
    assert created.exit_code == 0, created.output
    full = re.search(r"key \(shown once\): (gh_ops_\S+)", created.output).group(1)
    listed = _run(config, "api-keys", "list")
    assert "PMS" in listed.output and "active" in listed.output and full not in listed.output
    assert _run(config, "api-keys", "revoke", "1").exit_code == 0
    assert "revoked" in _run(config, "api-keys", "list").output
    missing = _run(config, "api-keys", "revoke", "99")
    assert missing.exit_code != 0

    # Production mode: plain http only to this machine.
    refused = _run(
        config, "webhooks", "add", "--name", "PMS", "--url", "http://pms.example/h", "--topic", "access.granted"
    )
    assert refused.exit_code != 0 and "https" in refused.output
    added = _run(
        config, "webhooks", "add", "--name", "PMS", "--url", "http://127.0.0.1:9/h", "--topic", "access.granted"
    )
    assert added.exit_code == 0, added.output
    assert re.search(r"signing secret \(shown once\): whsec_\S+", added.output)
    listed = _run(config, "webhooks", "list").output
    assert "http://127.0.0.1:9/h" in listed and "whsec_" not in listed and "never delivered" in listed
    rotated = _run(config, "webhooks", "rotate-secret", "1")
    assert rotated.exit_code == 0 and re.search(r"\(shown once\): whsec_\S+", rotated.output)
    delivered = _run(config, "webhooks", "deliver", "--once")
    assert delivered.exit_code == 0 and "delivered 0" in delivered.output
    assert _run(config, "webhooks", "remove", "1").exit_code == 0
    assert "PMS" not in _run(config, "webhooks", "list").output
