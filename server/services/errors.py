"""Domain errors raised by services; views turn them into clear messages (console) or JSON (APIs)."""

from __future__ import annotations


class DomainError(Exception):
    """A request broke a business rule or referred to something that does not exist."""

    code = "invalid"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    """The request contradicts the current state (duplicate card, missing consent, ...)."""

    code = "conflict"
    http_status = 409


class RuleViolation(DomainError):
    """The request would break one of Gatehouse's principles."""

    code = "rule_violation"
    http_status = 422
