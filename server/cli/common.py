"""What every `gatehouse` command module shares: the config option, errors for the operator, the app."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn, TypeVar

import click

from gatehouse_core.configfile import ConfigError
from gatehouse_core.keyring import KeyDirError

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    envvar="GATEHOUSE_CONFIG",
    help="Config file (TOML). See config/ for commented examples.",
)
check_option = click.option("--check-config", is_flag=True, help="Validate the config file, report and exit.")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error for the operator and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_or_exit(loader: Callable[[Path], T], path: Path, check_only: bool = False) -> T:
    """Load a config file; on problems print each key, value and reason and exit 2."""
    try:
        config = loader(path)
    except ConfigError as exc:
        click.echo(exc.report(), err=True)
        sys.exit(2)
    if check_only:
        click.echo(f"config file {path} is valid")
        sys.exit(0)
    return config


def setup_logging(level: str) -> None:
    """Plain, timestamped logs on stderr."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    # Migration chatter is not news to an operator.
    logging.getLogger("alembic").setLevel(max(logging.getLevelName(level), logging.WARNING))


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set the one stop event every loop watches."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


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
