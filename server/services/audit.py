"""The append-only audit log of administrative actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.models import AuditEntry, ConsoleUser
from server.services.session import DbSession


@dataclass(frozen=True)
class Actor:
    """Who performs an action: a console user, or a named system process (CLI, worker, demo)."""

    label: str
    user_id: int | None = None

    @classmethod
    def of(cls, user: ConsoleUser) -> Actor:
        """Actor for a logged-in console user."""
        return cls(label=user.username, user_id=user.id)


SYSTEM = Actor("system")


def record(
    session: DbSession,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object = None,
    *,
    site_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry in the caller's transaction. Never pass credential values or biometrics."""
    entry = AuditEntry(
        actor_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        site_id=site_id,
        details=details or {},
    )
    session.add(entry)
    return entry
