"""What every `gatehouse` command module shares: the config option, errors for the operator, the app."""

from __future__ import annotations

import logging
from pathlib import Path

from gatehouse_core.keyring import KeyDirError

# One definition of the config option and the operator's exits for both commands; `gatehouse-terminal` cannot
# import the server, so they live with it.
from terminals.cli import check_option, config_option, fail, load_or_exit, log_to_stderr, stop_on_signals

__all__ = [
    "app_context",
    "check_option",
    "config_option",
    "fail",
    "load_or_exit",
    "server_app",
    "setup_logging",
    "stop_on_signals",
]


def setup_logging(level: str) -> None:
    """Plain, timestamped logs on stderr."""
    log_to_stderr(level)
    # Migration chatter is not news to an operator.
    logging.getLogger("alembic").setLevel(max(logging.getLevelName(level), logging.WARNING))


def server_app(config_path: Path, check_only: bool):  # type: ignore[no-untyped-def]
    """Load the server config (exit 2 with a report if it is wrong) and build the app on a current schema."""
    from server.app import create_app
    from server.config import load_server_config

    config = load_or_exit(load_server_config, config_path, check_only)
    setup_logging(config.log_level)
    try:
        app = create_app(config)
    except KeyDirError as exc:
        fail(str(exc))
    from server.ops.dbcheck import schema_problem

    problem = schema_problem(app)
    if problem:
        fail(problem)
    return config, app


def app_context(config_path: Path):  # type: ignore[no-untyped-def]
    """An app context for a command that works on the database."""
    _config, app = server_app(config_path, False)
    return app.app_context()
