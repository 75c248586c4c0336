"""Where the console's pages found the wording of service refusals; it now lives in server.services.wording.operators.

Kept only for server/console/__init__.py and server/console/person/common.py, which still import `describe` from
here; once they import it from server.services.wording.operators, this module goes.
"""

from __future__ import annotations

from server.services.wording.operators import describe

__all__ = ["describe"]
