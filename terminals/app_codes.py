"""Finding whose rotating app code was keyed in, without trying every resident's seed at the door.

The terminal keeps its residents' app-code seeds (unsealed, in memory only) and a table of their codes
for the time steps a terminal accepts plus one step ahead. Work on the next step is done in small
slices while the loop is idle, so a keyed code is found with one dictionary lookup and the loop is
never blocked for long. A QR names its credential and is checked against that one seed directly.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque

import pyotp

from gatehouse_core.app_code import VALID_WINDOW, code_at_step, step_of, totp

log = logging.getLogger(__name__)

LOOKAHEAD = 1  # steps computed beyond the last accepted one


class AppCodeIndex:
    """Seeds by credential, and codes by time step."""

    def __init__(self) -> None:
        self._seeds: dict[int, tuple[str, pyotp.TOTP]] = {}
        self._by_person: dict[str, set[int]] = defaultdict(set)
        self._codes: dict[int, dict[str, set[int]]] = {}
        self._todo: deque[tuple[int, deque[int]]] = deque()

    def __len__(self) -> int:
        return len(self._seeds)

    # ---- seeds ---------------------------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every seed (before a full reload)."""
        self._seeds.clear()
        self._by_person.clear()
        self._codes.clear()
        self._todo.clear()

    def set_person(self, pseudonym: str, seeds: dict[int, bytes]) -> None:
        """Replace a person's app-code seeds (empty: they have none any more)."""
        for credential in self._by_person.pop(pseudonym, set()):
            self._seeds.pop(credential, None)
        for credential, seed in seeds.items():
            generator = totp(seed)
            self._seeds[credential] = (pseudonym, generator)
            self._by_person[pseudonym].add(credential)
            # Steps already tabled get this seed's codes now; steps still being built queue it.
            pending = {}
            for step, queue in self._todo:
                queue.append(credential)
                pending[step] = queue
            for step, table in self._codes.items():
                if step not in pending:
                    table.setdefault(code_at_step(generator, step), set()).add(credential)

    def seed(self, credential: int) -> tuple[str, pyotp.TOTP] | None:
        """Owner and generator of one credential."""
        return self._seeds.get(credential)

    # ---- code tables ---------------------------------------------------------------------------------------

    def _wanted(self, unix_time: float) -> range:
        now = step_of(unix_time)
        return range(now - VALID_WINDOW, now + VALID_WINDOW + LOOKAHEAD + 1)

    def _schedule(self, unix_time: float) -> None:
        wanted = self._wanted(unix_time)
        for step in list(self._codes):
            if step not in wanted:
                del self._codes[step]
        self._todo = deque((s, q) for s, q in self._todo if s in wanted)
        for step in wanted:
            if step not in self._codes:
                self._codes[step] = {}
                self._todo.append((step, deque(self._seeds)))

    def pending(self, unix_time: float) -> bool:
        """Whether there is table work to do (the loop then works in slices while idle)."""
        self._schedule(unix_time)
        return bool(self._todo)

    def work(self, unix_time: float, budget_s: float = 0.0005) -> None:
        """Build code tables for about `budget_s` seconds."""
        self._schedule(unix_time)
        deadline = time.perf_counter() + budget_s
        while self._todo and time.perf_counter() < deadline:
            step, queue = self._todo[0]
            table = self._codes[step]
            for _ in range(min(16, len(queue))):
                credential = queue.popleft()
                found = self._seeds.get(credential)
                if found is not None:
                    table.setdefault(code_at_step(found[1], step), set()).add(credential)
            if not queue:
                self._todo.popleft()

    def lookup(self, code: str, unix_time: float) -> list[tuple[int, str, int]]:
        """(credential, owner, step) for every seed whose code for an accepted step is `code`."""
        self._schedule(unix_time)
        accepted = range(step_of(unix_time) - VALID_WINDOW, step_of(unix_time) + VALID_WINDOW + 1)
        if any(step in accepted for step, _ in self._todo):
            # Only right after start-up or a full reload: finish the accepted steps now.
            started = time.perf_counter()
            while any(step in accepted for step, _ in self._todo):
                self.work(unix_time, budget_s=1.0)
            log.info("app-code tables completed on demand in %.0f ms", (time.perf_counter() - started) * 1000)
        found = []
        for step in accepted:
            for credential in self._codes.get(step, {}).get(code, ()):
                owner = self._seeds.get(credential)
                if owner is not None and code_at_step(owner[1], step) == code:
                    found.append((credential, owner[0], step))
        return found
