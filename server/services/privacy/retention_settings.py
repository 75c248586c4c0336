"""A site's retention settings: how long events, visitor details and unused face templates are kept, and when
an unconfirmed erasure raises an alarm; and whether residents may enroll their face from the app.

None of these reach door terminals (retention and alarms run on the server, app enrollment is the app's), so
saving them journals nothing. Every change is audited with the old and new values: they are settings, not
personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select

from server.models import AuditEntry, Site
from server.services import audit
from server.services.audit import Actor
from server.services.errors import RuleViolation
from server.services.session import DbSession

# Least and greatest value of each number. The least values are the database's own check constraint
# (privacy_settings_range); the greatest keep a typo from meaning "keep for ever" (ten years at most).
RANGES: dict[str, tuple[int, int]] = {
    "event_retention_days": (1, 3650),
    "visitor_retention_days": (0, 3650),
    "template_unused_days": (1, 3650),
    "erasure_alarm_hours": (1, 720),
}


@dataclass(frozen=True)
class RetentionSettings:
    """The retention settings of one site, as a manager edits them."""

    event_retention_days: int
    visitor_retention_days: int
    template_unused_days: int
    erasure_alarm_hours: int
    app_face_enrollment: bool

    @classmethod
    def of(cls, site: Site) -> RetentionSettings:
        """The site's current settings."""
        return cls(**{item.name: getattr(site, item.name) for item in fields(cls)})


def out_of_range(settings: RetentionSettings) -> dict[str, tuple[int, int]]:
    """The numbers outside their range, each with the range it must lie in."""
    wrong = {}
    for name, (low, high) in RANGES.items():
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            wrong[name] = (low, high)
    return wrong


def save_settings(
    session: DbSession, actor: Actor, site: Site, settings: RetentionSettings
) -> dict[str, dict[str, Any]]:
    """Store a site's retention settings; returns what changed ({name: {"from": old, "to": new}}), audited."""
    wrong = out_of_range(settings)
    if wrong:
        name, (low, high) = next(iter(wrong.items()))
        raise RuleViolation(
            f"The {name.replace('_', ' ')} setting must be a whole number from {low} to {high}.",
            code="setting_out_of_range",
        )
    changed: dict[str, dict[str, Any]] = {}
    for item in fields(RetentionSettings):
        old, new = getattr(site, item.name), getattr(settings, item.name)
        if old != new:
            changed[item.name] = {"from": old, "to": new}
            setattr(site, item.name, new)
    if changed:
        audit.record(session, actor, "privacy.retention_settings", "site", site.id, site_id=site.id, details=changed)
    return changed


@dataclass(frozen=True)
class LastPurge:
    """The latest retention purge that removed something at a site."""

    at: datetime
    kind: str
    count: int


def last_purge(session: DbSession, site: Site) -> LastPurge | None:
    """When retention last removed something at the site (runs that removed nothing are not audited)."""
    entry = session.scalar(
        select(AuditEntry)
        .where(AuditEntry.action == "retention.purge", AuditEntry.site_id == site.id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(1)
    )
    if entry is None:
        return None
    details = entry.details or {}
    return LastPurge(at=entry.at, kind=str(details.get("kind", "")), count=int(details.get("count", 0)))
