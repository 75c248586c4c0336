"""Lockout against guessing at a terminal: wrong guesses lock what they could have guessed, for a growing time.

What a wrong guess counts against depends on what it could have matched:
· A typed code, visitor code or ID number says nothing about whose it is, so it is a guess against everyone
  who types at this terminal: five within 15 minutes lock typed entry (the keypad lockout) for 30 seconds.
· An app-code QR (`GHA1:<credential>:<code>`) names its credential, so a wrong code in it is a guess against
  that one credential only, and five lock only that credential's QR.
· A visitor's signed QR cannot be guessed (a forged signature is simply refused), and cards and face are not
  typed: none of them count, and no lockout refuses them.
Every further lockout of the same scope doubles, up to an hour, until that scope has been quiet for an hour
or a guard clears everything. Times are wall-clock so the state survives a restart (a power cycle must not
reset an attacker's count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


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
    """The keypad's failure count and escalation level, and one such count per guessed-at app-code credential."""

    policy: LockoutPolicy = field(default_factory=LockoutPolicy)
    failures: list[float] = field(default_factory=list)
    level: int = 0
    until: float = 0.0
    last_failure: float = 0.0
    credentials: dict[int, Lockout] = field(default_factory=dict)

    def locked(self, now: float) -> bool:
        """Whether typed entry (keyed codes, typed ID numbers) is refused at `now`."""
        return now < self.until

    def remaining(self, now: float) -> float:
        """Seconds left of the current keypad lockout (0 when not locked)."""
        return max(0.0, self.until - now)

    def failure(self, now: float) -> float | None:
        """Count a wrong typed guess; returns the lockout length if this one starts a lockout."""
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

    def credential_locked(self, credential: int, now: float) -> bool:
        """Whether QRs naming this app-code credential are refused at `now`."""
        count = self.credentials.get(credential)
        return count is not None and count.locked(now)

    def credential_failure(self, credential: int, now: float) -> float | None:
        """Count a wrong code in a QR naming `credential`; returns the lockout length if one starts."""
        self._forget_quiet(now)
        count = self.credentials.setdefault(credential, Lockout(self.policy))
        return count.failure(now)

    def _forget_quiet(self, now: float) -> None:
        # Counts that can no longer lock or escalate are dropped, so the state stays as small as the attack.
        self.credentials = {
            c: count
            for c, count in self.credentials.items()
            if count.locked(now) or now - count.last_failure <= max(self.policy.window_s, self.policy.quiet_reset_s)
        }

    def clear(self) -> None:
        """A guard's reset: unlock and forget the escalation, at the keypad and for every credential."""
        self.failures.clear()
        self.level = 0
        self.until = 0.0
        self.last_failure = 0.0
        self.credentials.clear()

    def _state(self) -> dict[str, Any]:
        return {"failures": self.failures, "level": self.level, "until": self.until, "last": self.last_failure}

    def dumps(self) -> str:
        """State for the terminal store."""
        state = self._state()
        if self.credentials:
            state["credentials"] = {str(c): count._state() for c, count in self.credentials.items()}
        return json.dumps(state)

    @classmethod
    def _from(cls, data: Any, policy: LockoutPolicy) -> Lockout:
        lockout = cls(policy)
        lockout.failures = [float(t) for t in data["failures"]][-policy.threshold :]
        lockout.level = max(0, min(int(data["level"]), 32))
        lockout.until = float(data["until"])
        lockout.last_failure = float(data["last"])
        return lockout

    @classmethod
    def loads(cls, text: str | None, policy: LockoutPolicy) -> Lockout:
        """State from the terminal store; a missing or damaged value starts clean."""
        if not text:
            return cls(policy)
        try:
            data = json.loads(text)
            lockout = cls._from(data, policy)
            lockout.credentials = {int(c): cls._from(v, policy) for c, v in data.get("credentials", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(policy)
        return lockout
