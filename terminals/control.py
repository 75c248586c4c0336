"""The terminal's local control interface: a Unix socket taking one JSON request per line.

It is how the simulated terminal is driven (present a card, type a code, show a QR) and how a guard's
tool on the terminal itself reads its status or clears a keypad lockout. The socket is created with
mode 0600, so only the terminal's own user can use it; nothing here is reachable over the network.
Requests are handed to the loop like any driver's input, and the reply carries what the door showed,
never the precise reason (that goes into the access event).

Requests: {"op": "card", "uid": "04A2..."} · {"op": "id", "number": "..."} · {"op": "code", "digits": "..."}
· {"op": "qr", "text": "..."} · {"op": "face", "photo": "/absolute/path.jpg"} · {"op": "status"}
· {"op": "clear_lockout"} · {"op": "door", "action": "open" | "close" | "exit"} (the simulated door contact and
exit button); each may name "door". A presented photo is read by the terminal (the socket's only
user is the terminal's own), held up to the door's camera as frames, and never kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from terminals.inputs import CardPresented, CodeEntered, IdEntered, Presentation, QrScanned

log = logging.getLogger(__name__)

MAX_REQUEST = 4096
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere
REPLY_TIMEOUT = 5.0


@dataclass(frozen=True)
class PhotoPresented:
    """A photo file to hold up to a door's camera (the simulated terminal's camera)."""

    door: int
    photo: Path


@dataclass(frozen=True)
class DoorAction:
    """Open or close a simulated door contact, or press a simulated exit button."""

    door: int
    action: Literal["open", "close", "exit"]


DOOR_ACTIONS = ("open", "close", "exit")

Request = Presentation | PhotoPresented | DoorAction | str
# Hands a request to the loop: a presentation, a photo, a door action or an op name; the future gets the reply.
Dispatch = Callable[[Request, "Future[dict[str, Any]]"], None]


class ControlError(ValueError):
    """A request the control interface cannot take."""


def parse_request(line: bytes, default_door: Callable[[], int | None]) -> Request:
    """A request line → a presentation, or the name of a status op."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ControlError("send one JSON object per line") from None
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        raise ControlError('a request is a JSON object with an "op"')
    op = request["op"]
    if op in ("status", "clear_lockout"):
        return str(op)
    door = request.get("door", default_door())
    if not isinstance(door, int) or isinstance(door, bool) or door < 1:
        raise ControlError('name the "door" (this terminal serves several, or has no roster yet)')
    if op == "door":
        action = request.get("action")
        if action not in DOOR_ACTIONS:
            raise ControlError('"door" needs "action": "open", "close" or "exit"')
        return DoorAction(door, cast(Literal["open", "close", "exit"], action))
    fields = {"card": "uid", "id": "number", "code": "digits", "qr": "text", "face": "photo"}
    if op not in fields:
        raise ControlError(f"unknown op {op!r}; use card, id, code, qr, face, door, status or clear_lockout")
    value = request.get(fields[op])
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise ControlError(f'"{op}" needs "{fields[op]}" as a non-empty string')
    if op == "card":
        return CardPresented(door, value)
    if op == "id":
        return IdEntered(door, value)
    if op == "code":
        return CodeEntered(door, value)
    if op == "face":
        if not Path(value).is_absolute():
            raise ControlError('"face" needs "photo" as an absolute path (the terminal runs in another folder)')
        return PhotoPresented(door, Path(value))
    return QrScanned(door, value)


class ControlServer:
    """Serves the control socket from its own threads; every request goes through the loop."""

    def __init__(self, path: Path, dispatch: Dispatch, default_door: Callable[[], int | None]) -> None:
        self.path = path
        self._dispatch = dispatch
        self._default_door = default_door
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create the socket (0600) and serve."""
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    if len(line) > MAX_REQUEST:
                        self._reply({"error": "request too long"})
                        return
                    if line.strip():
                        self._reply(outer._serve(line))

            def _reply(self, body: dict[str, Any]) -> None:
                self.wfile.write(json.dumps(body).encode() + b"\n")
                self.wfile.flush()

        if len(str(self.path).encode()) > MAX_SOCKET_PATH:
            raise ControlError(
                f"the control socket path {self.path} is longer than {MAX_SOCKET_PATH} bytes, which Unix sockets "
                "do not allow; set control_socket in the terminal config to a shorter path"
            )
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o177)
        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        finally:
            os.umask(old_umask)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="control", daemon=True)
        self._thread.start()

    def _serve(self, line: bytes) -> dict[str, Any]:
        try:
            request = parse_request(line, self._default_door)
        except ControlError as exc:
            return {"error": str(exc)}
        reply: Future[dict[str, Any]] = Future()
        self._dispatch(request, reply)
        try:
            return reply.result(timeout=REPLY_TIMEOUT)
        except FutureTimeout:
            return {"error": "the terminal did not answer in time"}

    def stop(self) -> None:
        """Stop serving and remove the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def send(path: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a running terminal's control socket (CLI, tests)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ControlError("the terminal sent something that is not a reply")
    return answer
