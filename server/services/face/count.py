"""The count of people with a face template, against the 100,000-person filing threshold.

Handlers of face data about this many people file with the regulator (2025 face-recognition Measures,
art. 15). The count is over every site of this server: one server is one controller's system.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from server.models import AlarmKind, FaceTemplate
from server.services.operations import alarms
from server.services.session import DbSession

log = logging.getLogger(__name__)

FILING_THRESHOLD = 100_000
# An alarm is raised once as the count passes each of these shares of the threshold.
WARN_STEPS = (0.8, 0.9, 0.95, 1.0)


@dataclass(frozen=True)
class FaceCount:
    """People with a stored face template on this server, against the filing threshold."""

    enrolled: int
    threshold: int = FILING_THRESHOLD

    @property
    def share(self) -> float:
        """Enrolled people as a share of the threshold."""
        return self.enrolled / self.threshold

    @property
    def warning(self) -> str | None:
        """What to tell the operator once the count nears the threshold, else None."""
        if self.share < WARN_STEPS[0]:
            return None
        if self.enrolled >= self.threshold:
            return (
                f"{self.enrolled:,} people have face templates on this server, at or over the "
                f"{self.threshold:,}-person threshold: the controller must file with the regulator."
            )
        return (
            f"{self.enrolled:,} people have face templates on this server ({self.share:.0%} of the "
            f"{self.threshold:,}-person filing threshold): prepare the filing, or erase templates no longer needed."
        )


def face_count(session: DbSession, threshold: int = FILING_THRESHOLD) -> FaceCount:
    """How many people hold a face template, over every site of this server (one controller)."""
    enrolled = session.scalar(select(func.count(func.distinct(FaceTemplate.person_id)))) or 0
    return FaceCount(enrolled=enrolled, threshold=threshold)


def check_face_count(session: DbSession, threshold: int = FILING_THRESHOLD) -> FaceCount:
    """Count enrolled faces and raise a (once per step) alarm as the count passes each warning step."""
    count = face_count(session, threshold)
    warning = count.warning
    for step in WARN_STEPS:
        passed = warning is not None and count.share >= step
        if passed and alarms.raise_alarm(
            session, AlarmKind.FACE_COUNT, f"{int(step * 100)}%", site_id=None, message=warning or ""
        ):
            log.warning("face templates: %s", warning)
    return count
