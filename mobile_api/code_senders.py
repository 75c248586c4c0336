"""Senders of one-time sign-in codes: a spool folder, an external program, or a plugin of your own.

None of them logs the code or the phone number. A sender that fails raises CodeSenderError, which the API
logs (without phone or code) and answers like a sent code, so the answer never tells who has an account.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import cast

from mobile_api.config import LoginCodeConfig
from server.services.accounts.login_codes import CodeMessage, CodeSender, CodeSenderError


class SpoolSender:
    """Writes each message as a JSON file (mode 0600) into a folder, for development or a gateway that reads it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: CodeMessage) -> None:
        """Write one message file atomically."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            name = f"{secrets.token_hex(8)}.json"
            tmp = self.folder / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"phone": message.phone, "text": message.text(), "code": message.code}, out)
            tmp.replace(self.folder / name)
        except OSError as exc:
            raise CodeSenderError(f"cannot write to the code spool folder {self.folder}: {exc.strerror}") from None


class CommandSender:
    """Runs a program (an SMS gateway's client) with the phone number as argument and the text on stdin."""

    def __init__(self, argv: list[str], timeout: float) -> None:
        self.argv = argv
        self.timeout = timeout

    def send(self, message: CodeMessage) -> None:
        """Run the program once; a non-zero exit or a time-out is a failure."""
        argv = [part.replace("{phone}", message.phone) for part in self.argv]
        try:
            done = subprocess.run(  # noqa: S603 - argv from the operator's config, no shell
                argv, input=message.text(), text=True, capture_output=True, timeout=self.timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CodeSenderError(f"the code sender {self.argv[0]} could not run: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise CodeSenderError(f"the code sender {self.argv[0]} failed with exit status {done.returncode}")


def make_sender(config: LoginCodeConfig | None) -> CodeSender | None:
    """The sender the config asks for, or None when sign-in by code is off."""
    if config is None:
        return None
    if config.sender == "spool":
        assert config.spool_dir is not None  # noqa: S101 - guaranteed by LoginCodeConfig's validator
        return SpoolSender(config.spool_dir)
    if config.sender == "command":
        assert config.command  # noqa: S101
        return CommandSender(list(config.command), config.timeout_seconds)
    assert config.plugin is not None  # noqa: S101
    module_name, _, factory_name = config.plugin.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"login_codes.plugin {config.plugin!r} cannot be loaded: {exc}") from None
    sender = cast(Callable[[dict[str, str]], CodeSender], factory)(dict(config.options))
    if not callable(getattr(sender, "send", None)):
        raise ValueError(f"login_codes.plugin {config.plugin!r} did not return an object with a send(message) method")
    return sender
