"""The `gatehouse-terminal` command: its commands, and what it says when no terminal is running."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from terminals.cli import main

TERMINAL_TOML = (
    'terminal_id = "t-1"\nsite = "demo"\ndata_dir = "data"\nserver_public_key = "key.pem"\n'
    'seal_key_file = "seal.key"\ncredential_key_file = "credential.key"\n[mqtt]\nhost = "broker.lan"\n'
)


def test_the_terminal_command_has_the_door_tools_and_nothing_of_the_server():
    assert set(main.commands) == {"run", "present", "door", "status", "clear-lockout"}


def test_a_valid_config_passes_check(tmp_path: Path):
    path = tmp_path / "terminal.toml"
    path.write_text(TERMINAL_TOML)
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--check-config"], prog_name="gatehouse-terminal")
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


def test_no_running_terminal_is_reported_with_the_command_that_starts_one(tmp_path: Path):
    path = tmp_path / "terminal.toml"
    path.write_text(TERMINAL_TOML)
    result = CliRunner().invoke(main, ["status", "--config", str(path)], prog_name="gatehouse-terminal")
    assert result.exit_code == 2
    assert "cannot reach the terminal's control socket" in result.output
    assert "is `gatehouse-terminal run` running?" in result.output
