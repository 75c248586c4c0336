"""`gatehouse terminal`: the server's admin command beside every `gatehouse-terminal` command."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from server.cli.main import main
from terminals.cli import main as terminal_main
from tests.terminal.test_cli import TERMINAL_TOML


def test_every_terminal_command_is_offered_under_the_same_name():
    group = main.commands["terminal"]
    assert isinstance(group, click.Group)
    assert group.commands.keys() - {"add"} == terminal_main.commands.keys()
    for name, command in terminal_main.commands.items():
        assert group.commands[name] is command


def test_no_running_terminal_is_reported_with_the_command_typed(tmp_path: Path):
    path = tmp_path / "terminal.toml"
    path.write_text(TERMINAL_TOML)
    result = CliRunner().invoke(main, ["terminal", "status", "--config", str(path)], prog_name="gatehouse")
    assert result.exit_code == 2
    assert "is `gatehouse terminal run` running?" in result.output
