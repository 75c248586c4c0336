"""Console: doors, access groups with weekly schedules, and holidays: one blueprint, a module per part."""

from server.console.access import (  # noqa: F401  (their routes join the blueprint)
    door_modes,
    doors,
    groups,
    holidays,
    offline,
)
from server.console.access.common import bp

__all__ = ["bp"]
