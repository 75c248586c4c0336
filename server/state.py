"""The running server's state (config, keys, face engine), reached by views and services through `state()`.

Kept apart from the app factory so that no view imports `server.app`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from gatehouse_core.keyring import ServerKeys
from server.config import ServerConfig
from server.services.face.enrollment import EnrollmentEngine


@dataclass(frozen=True)
class Gatehouse:
    """Per-app state that views and services reach through `state()`."""

    config: ServerConfig
    keys: ServerKeys
    face: EnrollmentEngine
    """Loads its model on first use, never at app creation."""


def state() -> Gatehouse:
    """The running app's config, keys and face engine."""
    value: Gatehouse = current_app.extensions["gatehouse"]
    return value
