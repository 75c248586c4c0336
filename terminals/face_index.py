"""The terminal's face templates as one searchable gallery, kept current as sync changes the roster.

One worker thread owns every write to the gallery: it reads the committed roster through its own read-only
connection, unseals templates into memory (never to disk) and adds or removes them; searches at the door run
meanwhile. Templates of another model than the terminal's are refused (counted, never compared). Whatever
the gallery holds, a match is only honoured if the store still lists that template for that person (the
decision engine checks), so a deletion applied by sync takes effect before the gallery catches up.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gatehouse_core.face.enroll import vector_from_bytes
from gatehouse_core.face.gallery import Gallery
from gatehouse_core.sealed import SealError, unseal
from gatehouse_core.wire.records import PersonRecord, template_context
from terminals.store import TerminalStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Full:
    """Reload the whole roster."""


@dataclass(frozen=True)
class _People:
    """Reload these people."""

    pseudonyms: frozenset[str]


@dataclass(frozen=True)
class _Barrier:
    """Signal once everything queued before is applied."""

    done: threading.Event


_Job = _Full | _People | _Barrier | None


class FaceIndex:
    """The gallery of a terminal's roster for one face model."""

    def __init__(self, store_path: Path, seal_key: bytes, model_id: str, dim: int) -> None:
        self.model_id = model_id
        self.gallery = Gallery(dim)
        self._store_path = store_path
        self._seal_key = seal_key
        self._held: dict[str, set[int]] = {}
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.other_model = 0
        """Templates refused because another model made them (re-enrol those people with this model)."""
        self.unusable = 0
        """Templates that could not be unsealed or parsed."""

    @property
    def ready(self) -> bool:
        """Whether the first full load is done (before that, face entry waits and other methods work)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first load is done."""
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Start the worker; it loads the whole roster first."""
        self._jobs.put(_Full())
        self._thread = threading.Thread(target=self._run, name="face-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(10)
            self._thread = None

    def synced(self, people: frozenset[str], full: bool) -> None:
        """Sync committed changes to these people (or replaced the whole roster); called from the loop."""
        self._jobs.put(_Full() if full else _People(people))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every change queued so far is in the gallery (the face hold's release, tests, benchmarks)."""
        done = threading.Event()
        self._jobs.put(_Barrier(done))
        return done.wait(timeout)

    # ---- the worker ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        store = TerminalStore(self._store_path, read_only=True)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                try:
                    if isinstance(job, _Full):
                        self._load_all(store)
                        self._ready.set()
                    elif isinstance(job, _People):
                        self._update(store, job.pseudonyms)
                    else:
                        job.done.set()
                except Exception:
                    log.exception("face index: could not apply a roster change; reloading everything")
                    self._jobs.put(_Full())
        finally:
            store.close()

    def _load_all(self, store: TerminalStore) -> None:
        held: dict[str, set[int]] = {}
        self.other_model = self.unusable = 0

        def items() -> Iterator[tuple[int, str, np.ndarray]]:
            # Records are read and unsealed one at a time, straight into the gallery's build.
            for record in store.iter_records("person"):
                if isinstance(record, PersonRecord):
                    for tid, vector in self._vectors(record):
                        held.setdefault(record.pseudonym, set()).add(tid)
                        yield tid, record.pseudonym, vector

        self.gallery.replace_all(items())
        self._held = held
        log.info("face index: %d templates of %d people loaded", len(self.gallery), len(held))
        if self.other_model:
            log.warning(
                "face index: %d templates were made by another face model than %s and are not used; "
                "re-enrol those people",
                self.other_model,
                self.model_id,
            )

    def _update(self, store: TerminalStore, people: Iterable[str]) -> None:
        for pseudonym in people:
            record = store.person(pseudonym)
            wanted = dict(self._vectors(record)) if record is not None else {}
            for tid in self._held.get(pseudonym, set()) - wanted.keys():
                self.gallery.remove(tid)
            for tid, vector in wanted.items():
                if tid not in self.gallery:
                    self.gallery.add(tid, pseudonym, vector)
            if wanted:
                self._held[pseudonym] = set(wanted)
            else:
                self._held.pop(pseudonym, None)

    def _vectors(self, record: PersonRecord) -> Iterable[tuple[int, np.ndarray]]:
        for template in record.templates:
            if template.model != self.model_id:
                self.other_model += 1
                continue
            try:
                plain = unseal(self._seal_key, template.sealed, template_context(record.pseudonym, template.id))
                yield template.id, vector_from_bytes(plain, self.gallery.dim)
            except (SealError, ValueError):
                self.unusable += 1
                log.warning("face index: template %d could not be unsealed or read; skipped", template.id)
