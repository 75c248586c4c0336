"""The `gatehouse-terminal` command: run a door terminal, and the local tools that talk to a running one.

Installed with gatehouse[terminal], so it imports only terminals and gatehouse_core: no web or database stack.
The server's `gatehouse terminal` group offers the same commands. The config option, the operator's error exit
and the signal handling live here because `gatehouse` shares them and a terminal must not import the server.
"""

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


def log_to_stderr(level: str) -> None:
    """Plain, timestamped logs on stderr."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set the one stop event every loop watches."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@click.group()
@click.version_option(package_name="gatehouse")
def main() -> None:
    """A Gatehouse door terminal: decides offline, syncs with the server when it can."""


@main.command("run")
@config_option
@check_option
def run(config_path: Path, check_config: bool) -> None:
    """Run a door terminal."""
    from terminals.config import load_terminal_config
    from terminals.runtime import TerminalRuntime

    config = load_or_exit(load_terminal_config, config_path, check_config)
    log_to_stderr(config.log_level)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        runtime = TerminalRuntime(config, stop)
    except KeyDirError as exc:
        fail(str(exc))
    runtime.run()


def _control(config_path: Path, request: dict[str, object]) -> dict[str, object]:
    from terminals import control
    from terminals.config import load_terminal_config

    config = load_or_exit(load_terminal_config, config_path)
    path = config.control_socket or config.data_dir / "control.sock"
    try:
        answer = control.send(path, request)
    except (OSError, ValueError) as exc:
        # `gatehouse-terminal` or `gatehouse terminal`, whichever the operator typed.
        parent = click.get_current_context().parent
        group = parent.command_path if parent is not None else "gatehouse-terminal"
        fail(f"cannot reach the terminal's control socket {path} ({exc}); is `{group} run` running?")
    if "error" in answer:
        fail(str(answer["error"]))
    return answer


@main.command("present")
@config_option
@click.option("--door", type=int, help="Door id (needed when the terminal serves several doors).")
@click.argument("kind", type=click.Choice(["card", "id", "code", "qr", "face"]))
@click.argument("value")
def present(config_path: Path, door: int | None, kind: str, value: str) -> None:
    """Present a card UID, ID number, keyed code, QR text or a face PHOTO file at a running terminal (simulation).

    A face photo is held up to the door's camera: the terminal turns it into camera frames and runs them
    through the same face pipeline as its cameras' frames.
    """
    field = {"card": "uid", "id": "number", "code": "digits", "qr": "text", "face": "photo"}[kind]
    if kind == "face":
        photo = Path(value).expanduser().resolve()
        if not photo.is_file():
            fail(f"no photo file {value}")
        value = str(photo)
    request: dict[str, object] = {"op": kind, field: value}
    if door is not None:
        request["door"] = door
    answer = _control(config_path, request)
    if answer.get("ignored"):
        click.echo("not a Gatehouse code; ignored")
        return
    if answer.get("captured"):
        click.echo(f"card captured for enrolment - {answer['message']}")
        return
    click.echo(f"door {answer['door']}: {'OPEN' if answer['granted'] else 'stays shut'} - {answer['message']}")


@main.command("status")
@config_option
def status(config_path: Path) -> None:
    """Show a running terminal's link, roster sequence, doors and their states, lockout and unsent events."""
    for key, value in _control(config_path, {"op": "status"}).items():
        click.echo(f"{key}: {value}")


@main.command("door")
@config_option
@click.option("--door", "door_id", type=int, help="Door id (needed when the terminal serves several doors).")
@click.argument("action", type=click.Choice(["open", "close", "exit"]))
def door(config_path: Path, door_id: int | None, action: str) -> None:
    """Open or close a door's simulated contact, or press its simulated exit button (demo, tests, benchmark).

    Needs [door_inputs] driver = "simulated" and the door in [[doors]] with a contact_line (open, close) or a
    rex_line (exit). Prints the door's state afterwards: a door opened while locked is forced_open.
    """
    request: dict[str, object] = {"op": "door", "action": action}
    if door_id is not None:
        request["door"] = door_id
    answer = _control(config_path, request)
    click.echo(f"door {answer['door']}: {answer['state']}")


@main.command("clear-lockout")
@config_option
def clear_lockout(config_path: Path) -> None:
    """Clear a keypad lockout at the terminal (a guard's action; it is logged)."""
    _control(config_path, {"op": "clear_lockout"})
    click.echo("keypad lockout cleared")


if __name__ == "__main__":
    main()
