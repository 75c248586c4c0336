"""Sites, doors and who may use which door (access groups, schedules, holidays)."""
