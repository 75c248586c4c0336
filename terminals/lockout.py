"""Keypad lockout: wrong codes at one terminal lock code, ID and QR entry for a growing time.

Five wrong guesses within 15 minutes lock guessable entry (keyed codes, typed ID numbers, QR codes)
for 30 seconds; every further lockout doubles, up to an hour, until the terminal has been quiet for
an hour or a guard clears it. Cards and face keep working throughout, so residents are never locked
out by someone else's guessing. Times are wall-clock so the state survives a restart (a power cycle
must not reset an attacker's count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class LockoutPolicy:
    """Thresholds; see the terminal config's [lockout] section."""

    threshold: int = 5
    window_s: float = 900.0
    base_s: float = 30.0
    cap_s: float = 3600.0
    quiet_reset_s: float = 3600.0


@dataclass
class Lockout:
    """Failure count and escalation level of one terminal."""

    policy: LockoutPolicy = field(default_factory=LockoutPolicy)
    failures: list[float] = field(default_factory=list)
    level: int = 0
    until: float = 0.0
    last_failure: float = 0.0

    def locked(self, now: float) -> bool:
        """Whether guessable entry is refused at `now`."""
        return now < self.until

    def remaining(self, now: float) -> float:
        """Seconds left of the current lockout (0 when not locked)."""
        return max(0.0, self.until - now)

    def failure(self, now: float) -> float | None:
        """Count a wrong guess; returns the lockout length if this one starts a lockout."""
        if self.last_failure and now - self.last_failure > self.policy.quiet_reset_s:
            self.level = 0
        self.last_failure = now
        self.failures = [t for t in self.failures if now - t < self.policy.window_s]
        self.failures.append(now)
        if len(self.failures) < self.policy.threshold:
            return None
        length = min(self.policy.cap_s, self.policy.base_s * 2**self.level)
        self.level += 1
        self.failures.clear()
        self.until = now + length
        return length

    def clear(self) -> None:
        """A guard's reset: unlock and forget the escalation."""
        self.failures.clear()
        self.level = 0
        self.until = 0.0
        self.last_failure = 0.0

    def dumps(self) -> str:
        """State for the terminal store."""
        return json.dumps(
            {"failures": self.failures, "level": self.level, "until": self.until, "last": self.last_failure}
        )

    @classmethod
    def loads(cls, text: str | None, policy: LockoutPolicy) -> Lockout:
        """State from the terminal store; a missing or damaged value starts clean."""
        lockout = cls(policy)
        if not text:
            return lockout
        try:
            data = json.loads(text)
            lockout.failures = [float(t) for t in data["failures"]][-policy.threshold :]
            lockout.level = max(0, min(int(data["level"]), 32))
            lockout.until = float(data["until"])
            lockout.last_failure = float(data["last"])
        except (ValueError, KeyError, TypeError):
            return cls(policy)
        return lockout
