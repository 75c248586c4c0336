"""The mobile API served for real: waitress on a free loopback port in a thread, called over HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from gatehouse_core.configfile import parse_config
from gatehouse_core.keyring import ServerKeys
from mobile_api.app import create_app as create_mobile_app
from mobile_api.config import MobileApiConfig
from server.extensions import db

API = "/api/v1"


def mobile_api_config(database_url: str, key_dir: Path, **overrides: Any) -> MobileApiConfig:
    """A mobile API config on the test database (password sign-in only), validated like a real file."""
    data: dict[str, Any] = {
        "mode": "development",
        "database_url": database_url,
        "key_dir": str(key_dir),
        # Generous limits: these tests are about doors, not about the limiter.
        "rate_limits": {"default": "10000/minute", "sign_in": "10000/minute", "passes": "10000/hour"},
    }
    data.update(overrides)
    return parse_config(MobileApiConfig, data)


class LiveMobileApi:
    """A mobile API app served by waitress on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Flask) -> None:
        from waitress import create_server

        self.app = app
        self._httpd: Any = create_server(app, host="127.0.0.1", port=0, threads=4)
        self.host = "127.0.0.1"
        self.port: int = self._httpd.effective_port
        self._thread = threading.Thread(target=self._run, name="mobile-api", daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # close() while waitress is still polling its sockets
            self._httpd.run()

    def start(self) -> None:
        """Serve until close()."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the app's database connections."""
        self._httpd.close()
        self._thread.join(10)
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextlib.contextmanager
def serve_mobile_api(database_url: str, key_dir: Path, keys: ServerKeys, **overrides: Any) -> Iterator[LiveMobileApi]:
    """Build the mobile API on `database_url` and serve it over HTTP for the duration of the block."""
    app = create_mobile_app(mobile_api_config(database_url, key_dir, **overrides), keys=keys)
    server = LiveMobileApi(app)
    server.start()
    try:
        yield server
    finally:
        server.close()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status and parsed JSON body (None when empty)."""

    status: int
    body: Any
    content_type: str


class ApiClient:
    """A resident's app talking JSON to a live mobile API over a real socket (stdlib http.client)."""

    def __init__(self, server: LiveMobileApi, timeout: float = 15.0) -> None:
        self.host = server.host
        self.port = server.port
        self.timeout = timeout
        self.access_token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        """Send one request under /api/v1 (with the bearer token once signed in)."""
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.access_token is not None:
            headers["Authorization"] = f"Bearer {self.access_token}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, API + path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            content_type = response.getheader("Content-Type", "")
        finally:
            conn.close()
        parsed = json.loads(raw) if raw and content_type.startswith("application/json") else None
        return Answer(response.status, parsed, content_type)

    def get(self, path: str) -> Answer:
        """GET a path under /api/v1."""
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Answer:
        """POST JSON to a path under /api/v1."""
        return self.call("POST", path, body)

    def sign_in(self, login: str, password: str) -> Answer:
        """Sign in with a password; keeps the access token for later calls."""
        answer = self.post("/auth/login", {"login": login, "password": password})
        if answer.status == 200:
            self.access_token = answer.body["access_token"]
        return answer
