"""Role checks for console views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from server.models import ConsoleRole

F = TypeVar("F", bound=Callable[..., Any])


def require_role(*roles: ConsoleRole) -> Callable[[F], F]:
    """Allow only logged-in users with one of `roles` (403 otherwise)."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403, "Your role does not allow this page.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


ANY_ROLE = (ConsoleRole.ADMIN, ConsoleRole.MANAGER, ConsoleRole.GUARD)
MANAGERS = (ConsoleRole.ADMIN, ConsoleRole.MANAGER)
