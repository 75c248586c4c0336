"""Senders of one-time sign-in codes (a spool folder, an external program, or a plugin of your own) and the
deliverer that drives them from a background thread.

None of them logs the code or the phone number. Requests never call a sender: they queue the ask
(services.accounts.code_queue) and wake the deliverer, so the answer, and how long it takes, never tells who
has an account. A sender that fails raises CodeSenderError, which the deliverer logs (without phone or code)
and tries again later.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import cast

from flask import Flask

from mobile_api.config import LoginCodeConfig
from server.extensions import db
from server.models import utcnow
from server.services.accounts import code_queue
from server.services.accounts.login_codes import CodeMessage, CodeSender, CodeSenderError

log = logging.getLogger(__name__)

# How often the deliverer looks at the queue without being woken (another API process may have queued a request).
POLL_SECONDS = 5.0
# Shortest wait between passes, so a row another process holds does not make the thread spin.
MIN_WAIT_SECONDS = 0.1
# How long stopping waits for a send in progress (the command sender's timeout is at most a minute).
STOP_WAIT_SECONDS = 90.0


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


class CodeDeliverer:
    """Sends queued sign-in codes from one background thread of the mobile API.

    The thread drains the queue when it starts (requests left by a restart), whenever a request wakes it, when
    a retry falls due, and every POLL_SECONDS in case another process queued something.
    """

    def __init__(self, sender: CodeSender, queue_key: bytes, code_key: bytes, poll_seconds: float = POLL_SECONDS):
        self.sender = sender
        self.queue_key = queue_key
        self.code_key = code_key
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> datetime | None:
        """Deliver every request due now (in an app context); returns when the next pending one falls due."""
        while not self._stop.is_set():
            if code_queue.deliver_next(db.session, self.queue_key, self.code_key, self.sender) is None:
                break
        return code_queue.next_due(db.session)

    def wake(self) -> None:
        """A request was queued (and committed): deliver it now rather than at the next poll."""
        self._wake.set()

    def start(self, app: Flask) -> None:
        """Run the deliverer in a daemon thread, in `app`'s context, until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(app,), name="sign-in code deliverer", daemon=True)
        self._thread.start()

    def stop(self, wait_seconds: float = STOP_WAIT_SECONDS) -> None:
        """End the thread, letting a send in progress finish (a request not yet sent stays queued)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait_seconds)
            self._thread = None

    def _run(self, app: Flask) -> None:
        while not self._stop.is_set():
            wait = self.poll_seconds
            # A wake that comes while draining is kept for the next wait; one cleared here came before the drain.
            self._wake.clear()
            try:
                with app.app_context():
                    try:
                        due = self.drain()
                    finally:
                        db.session.remove()
            except Exception as exc:
                # Only the kind of failure: a database error's text can carry a query's parameters.
                log.error("queued sign-in codes could not be delivered (%s); trying again", type(exc).__name__)
            else:
                if due is not None:
                    wait = min(wait, max(MIN_WAIT_SECONDS, (due - utcnow()).total_seconds()))
            self._wake.wait(wait)
