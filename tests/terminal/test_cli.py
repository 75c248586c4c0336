"""The `gatehouse-terminal` command: its commands, and what it says when no terminal is running."""

from __future__ import annotations

import tempfile
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from terminals.cli import main
from terminals.control import ControlServer, DoorAction, Request

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


def test_door_sends_the_action_to_the_control_socket_and_prints_the_state(tmp_path: Path):
    socket_path = Path(tempfile.mkdtemp(prefix="gh-")) / "control.sock"
    seen: list[Request] = []

    def dispatch(request: Request, reply: Future[dict[str, Any]]) -> None:
        seen.append(request)
        if isinstance(request, DoorAction) and request.door == 9:
            reply.set_result({"error": "door 9 has no door contact in this terminal's config (doors with one: [3])"})
        else:
            reply.set_result({"door": 3, "state": "forced_open"})

    server = ControlServer(socket_path, dispatch, lambda: None)
    server.start()
    try:
        path = tmp_path / "terminal.toml"
        path.write_text(TERMINAL_TOML.replace("[mqtt]", f'control_socket = "{socket_path}"\n[mqtt]'))
        runner = CliRunner()
        result = runner.invoke(main, ["door", "--config", str(path), "--door", "3", "open"])
        assert result.exit_code == 0, result.output
        assert result.output == "door 3: forced_open\n"
        refused = runner.invoke(main, ["door", "--config", str(path), "--door", "9", "close"])
        assert refused.exit_code == 2
        assert "door 9 has no door contact" in refused.output
    finally:
        server.stop()
    assert seen == [DoorAction(3, "open"), DoorAction(9, "close")]
