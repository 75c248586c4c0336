"""Console: doors, access groups with weekly schedules, and holidays: one blueprint, a module per part."""

from server.console.access import door_modes, doors, groups, holidays  # noqa: F401  (their routes join the blueprint)
from server.console.access.common import bp

__all__ = ["bp"]
