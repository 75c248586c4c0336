"""Exhaustive 1:N face search for a terminal: an int8 pass over every template, then an exact rerank.

Every template is scored on each search (no approximate index). The first pass scores int8 copies of the
templates with NumKong's SIMD kernels, which reads a quarter of the memory float32 would; the best candidates
are then rescored exactly from the float32 copy. A bound on the int8 error decides whether any template
outside the candidates could still outrank the persons found; if one could, every template the bound does
not exclude is rescored too, so results are those of exact search, not merely close to them.

One writer thread adds, removes and replaces templates while other threads search. Row writes happen under
a short lock shared with searches; growth and `replace_all` build new arrays outside it and swap them in.
"""

from __future__ import annotations

import enum
import math
import operator
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numkong as nk
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
Rows = npt.NDArray[np.intp]

DEFAULT_CANDIDATES = 64
"""Templates the int8 pass hands to the exact rerank (more are rescored when the error bound requires it).

At 100,000 x 512 the bound let 99% of searches stop at 64 candidates (80% at 32, 44% at 16); reranking 64
rows costs some 30 us and the top-K selection costs the same for any small K."""

CLIP_RMS = 5.0
"""int8 codes clip at this many times 1/sqrt(dim), the root-mean-square coordinate of a unit vector."""

# Why this scale: a unit vector's coordinates have RMS 1/sqrt(dim) and face embeddings spread their energy
# over all coordinates, so clipping at 5 RMS touches about one coordinate in two million (Gaussian tail), while
# the step 5/(127*sqrt(dim)) keeps a row's rounding error near 0.011 in L2 norm, and never above 5/254 ~ 0.02
# when nothing is clipped, for any dim. One global symmetric scale (no zero point, -128 unused) makes the int8
# dot product exactly scale**2 times the dot of the dequantised vectors, with no per-row correction terms.
# Rows that clipping pushed past the rounding bound are few; they are always reranked instead of widening
# the bound for everyone.

_SCORE_SLACK = 1e-6
"""Covers rounding of the float64-accumulated scores to float32 and of the bound's own arithmetic."""

_CHUNK = 1024
"""Rows `replace_all` normalises and quantises at a time: bounds its temporary memory and GIL-holding steps."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """The best-scoring template of one person for a query."""

    label: str
    """The person's pseudonym."""
    key: int
    """The template id that scored best for that person."""
    score: float
    """Cosine similarity of the stored float32 template and query (float64 sum rounded to float32)."""


class MatchOutcome(enum.StrEnum):
    """What an open-set search means for the door."""

    MATCH = "match"
    NO_MATCH = "no_match"
    AMBIGUOUS = "ambiguous"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class MatchDecision:
    """The open-set decision for one query; `label` and `key` are set only for MATCH."""

    outcome: MatchOutcome
    label: str | None
    key: int | None
    score: float
    """Top-1 score (0.0 for an empty gallery)."""
    margin: float
    """Top-1 minus the best other person's score; infinite with no other person, 0.0 for an empty gallery."""


def decide(candidates: Sequence[Candidate], threshold: float, min_margin: float) -> MatchDecision:
    """Open-set decision on `search` results (best first): a match needs the threshold and the margin."""
    if not candidates:
        return MatchDecision(MatchOutcome.EMPTY, None, None, 0.0, 0.0)
    best = candidates[0]
    runner_up = next((c for c in candidates[1:] if c.label != best.label), None)
    margin = math.inf if runner_up is None else best.score - runner_up.score
    if best.score < threshold:
        return MatchDecision(MatchOutcome.NO_MATCH, None, None, best.score, margin)
    if margin < min_margin:
        return MatchDecision(MatchOutcome.AMBIGUOUS, None, None, best.score, margin)
    return MatchDecision(MatchOutcome.MATCH, best.label, best.key, best.score, margin)


@dataclass(eq=False)
class _Store:
    """One generation of the gallery's arrays; live rows are [0, count), kept contiguous by removal."""

    vectors: F32
    codes: I8
    keys: npt.NDArray[np.int64]
    labels: list[str]
    scores: npt.NDArray[Any]
    """(1, capacity) scratch for the int8 pass; only used under the gallery's lock."""
    count: int = 0
    slot_of: dict[int, int] = field(default_factory=dict)
    people: Counter[str] = field(default_factory=Counter)
    """Label -> number of templates."""
    outliers: set[int] = field(default_factory=set)
    """Keys whose int8 error exceeds the rounding bound; always reranked."""
    row_error: float = 0.0
    """Largest ||template - code/scale|| over the other rows (never lowered by removal: a bound stays a bound)."""

    @property
    def capacity(self) -> int:
        """Rows allocated."""
        return len(self.keys)


class Gallery:
    """Face templates of a roster, searched exhaustively per person; thread-safe for one writer, many readers."""

    def __init__(self, dim: int, *, capacity: int = 1024, candidates: int = DEFAULT_CANDIDATES) -> None:
        if dim < 1 or capacity < 1 or candidates < 1:
            raise ValueError("dim, capacity and candidates must be positive")
        self._dim = dim
        self._min_capacity = capacity
        self._candidates = candidates
        self._scale = 127.0 * math.sqrt(dim) / CLIP_RMS
        self._scale2 = self._scale * self._scale
        self._error_cap = math.sqrt(dim) / (2.0 * self._scale)
        # Coarse scores are integers up to 127**2 * dim: float32 holds them exactly below 2**24 (dim <= 1040).
        self._score_type: Literal["float32", "float64"] = "float32" if 127 * 127 * dim < 2**24 else "float64"
        # Worst-case error of a float32 dot of two unit vectors, for search_exact's preselection.
        self._gemv_error = 2.0 * dim * 2.0**-24
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._store = self._new_store(capacity)
        self._widened = 0

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._dim

    @property
    def capacity(self) -> int:
        """Templates the current arrays hold before they must grow."""
        with self._lock:
            return self._store.capacity

    @property
    def widened_searches(self) -> int:
        """Fast searches so far whose error bound required rescoring beyond the first candidates."""
        return self._widened

    def __len__(self) -> int:
        with self._lock:
            return self._store.count

    def __contains__(self, key: object) -> bool:
        try:
            index = operator.index(key)  # type: ignore[arg-type]
        except TypeError:
            return False
        with self._lock:
            return index in self._store.slot_of

    def keys(self) -> frozenset[int]:
        """Template ids held (waits for a running write, never blocks searches)."""
        with self._write_lock:
            return frozenset(self._store.slot_of)

    def label_of(self, key: int) -> str | None:
        """The person of a template, or None."""
        with self._lock:
            store = self._store
            slot = store.slot_of.get(key)
            return None if slot is None else store.labels[slot]

    def memory_bytes(self) -> int:
        """Bytes held by the arrays and index structures (label strings are shared and not counted)."""
        with self._lock:
            s = self._store
            arrays = s.vectors.nbytes + s.codes.nbytes + s.keys.nbytes + s.scores.nbytes
            return arrays + sum(sys.getsizeof(x) for x in (s.labels, s.slot_of, s.people, s.outliers))

    def add(self, key: int, label: str, vector: npt.ArrayLike) -> None:
        """Add a template, or replace the one with this key; the vector is normalised (ValueError if unusable)."""
        key, label = _check_key(key), _check_label(label)
        unit = self._units(np.asarray(vector)[None], [key])[0]
        code, error = self._quantise(unit[None])
        with self._write_lock:
            store = self._store
            slot = store.slot_of.get(key)
            if slot is None and store.count == store.capacity:
                store = self._grown(store)
            with self._lock:
                self._store = store
                if slot is None:
                    slot = store.count
                    store.count += 1
                    store.slot_of[key] = slot
                else:
                    _forget(store.people, store.labels[slot])
                    store.outliers.discard(key)
                store.vectors[slot] = unit
                store.codes[slot] = code[0]
                store.keys[slot] = key
                store.labels[slot] = label
                store.people[label] += 1
                self._note_error(store, key, float(error[0]))

    def remove(self, key: int) -> bool:
        """Remove a template; False if absent. No search starting after this returns will see it."""
        with self._write_lock, self._lock:
            store = self._store
            slot = store.slot_of.pop(key, None)
            if slot is None:
                return False
            _forget(store.people, store.labels[slot])
            store.outliers.discard(key)
            last = store.count - 1
            if slot != last:
                # Move the last row into the hole: live rows stay contiguous and the freed row is reused next.
                store.vectors[slot] = store.vectors[last]
                store.codes[slot] = store.codes[last]
                store.keys[slot] = store.keys[last]
                store.labels[slot] = store.labels[last]
                store.slot_of[int(store.keys[slot])] = slot
            store.labels[last] = ""
            store.count = last
            return True

    def replace_all(self, items: Iterable[tuple[int, str, npt.ArrayLike]]) -> None:
        """Replace every template (a later duplicate key wins); built aside, then swapped in at once."""
        with self._write_lock:
            store = self._built(items)
            with self._lock:
                self._store = store

    def search(self, query: npt.ArrayLike, people: int = 2) -> list[Candidate]:
        """The `people` best persons for a query, best first, each with their best template (fast path)."""
        _check_people(people)
        unit = self._units(np.asarray(query)[None], None)[0]
        qcode, qerror = self._quantise(unit[None])
        q64 = unit.astype(np.float64)
        qnorm = float(np.linalg.norm(q64))
        with self._lock:
            store = self._store
            n = store.count
            if n == 0:
                return []
            out = store.scores[:, :n]
            nk.cdist(qcode, store.codes[:n], metric="dot", out=out, out_dtype=self._score_type)
            coarse = out[0]
            extra = np.fromiter((store.slot_of[k] for k in store.outliers), np.intp, len(store.outliers))
            found, kth = self._top(store, coarse, q64, people, extra)
            if kth is None:
                return found
            # A template outside the candidates scores at most kth/scale**2 + bound (|q.g - q'.g'| <=
            # |q|.|g - g'| + |q - q'|.|g'|, g' the dequantised code); if even that cannot reach the last
            # person found, the result is exact. Otherwise rescore every template the bound does not exclude.
            bound = qnorm * store.row_error + float(qerror[0]) * (1.0 + store.row_error) + _SCORE_SLACK
            last = found[-1].score
            if last > kth / self._scale2 + bound:
                return found
            self._widened += 1
            rows = np.flatnonzero(coarse >= math.floor((last - bound) * self._scale2))
            return self._best(store, np.concatenate((rows, extra)), q64, people)

    def search_exact(self, query: npt.ArrayLike, people: int = 2) -> list[Candidate]:
        """The reference: every template scored in plain float32, same contract and scores as `search`."""
        _check_people(people)
        unit = self._units(np.asarray(query)[None], None)[0]
        q64 = unit.astype(np.float64)
        with self._lock:
            store = self._store
            n = store.count
            if n == 0:
                return []
            scores = store.vectors[:n] @ unit
            found, kth = self._top(store, scores, q64, people, np.empty(0, np.intp))
            if kth is None:
                return found
            # Reported scores are float64 sums rounded to float32; widen by float32's worst-case error so a
            # near-tie that float32 ordered differently is still rescored.
            rows = np.flatnonzero(scores >= found[-1].score - self._gemv_error - _SCORE_SLACK)
            return self._best(store, rows, q64, people)

    def _top(
        self, store: _Store, scores: npt.NDArray[Any], q64: F64, people: int, extra: Rows
    ) -> tuple[list[Candidate], float | None]:
        """Persons among the top-scoring rows, widening until enough persons appear; kth None if exhaustive."""
        n = len(scores)
        wanted = min(people, len(store.people))
        k = self._candidates
        while k < n:
            top = np.argpartition(scores, n - k)[n - k :]
            found = self._best(store, np.concatenate((top, extra)) if len(extra) else top, q64, people)
            if len(found) >= wanted:
                return found, float(scores[top[0]])
            k *= 4
        return self._best(store, np.arange(n), q64, people), None

    @staticmethod
    def _best(store: _Store, rows: Rows, q64: F64, people: int) -> list[Candidate]:
        """Exact per-person best of the given rows, best first; equal scores go to the lower row."""
        # Float64 sums rounded to float32 give a template the same score whichever rows are scored with it.
        scores = (store.vectors[rows].astype(np.float64) @ q64).astype(np.float32)
        found: list[Candidate] = []
        seen: set[str] = set()
        for i in np.lexsort((rows, -scores)).tolist():
            label = store.labels[rows[i]]
            if label not in seen:
                seen.add(label)
                found.append(Candidate(label, int(store.keys[rows[i]]), float(scores[i])))
                if len(found) == people:
                    break
        return found

    def _new_store(self, capacity: int) -> _Store:
        return _Store(
            vectors=np.zeros((capacity, self._dim), np.float32),
            codes=np.zeros((capacity, self._dim), np.int8),
            keys=np.zeros(capacity, np.int64),
            labels=[""] * capacity,
            scores=np.zeros((1, capacity), self._score_type),
        )

    def _grown(self, store: _Store) -> _Store:
        """A copy with twice the capacity; only the writer calls it, so the rows it copies cannot change."""
        n = store.count
        grown = self._new_store(2 * store.capacity)
        grown.vectors[:n] = store.vectors[:n]
        grown.codes[:n] = store.codes[:n]
        grown.keys[:n] = store.keys[:n]
        grown.labels[:n] = store.labels[:n]
        grown.count, grown.slot_of, grown.people = n, store.slot_of, store.people
        grown.outliers, grown.row_error = store.outliers, store.row_error
        return grown

    def _built(self, items: Iterable[tuple[int, str, npt.ArrayLike]]) -> _Store:
        """A store holding exactly `items`, normalised and quantised in chunks."""
        slot_of: dict[int, int] = {}
        keys: list[int] = []
        labels: list[str] = []
        raw: list[npt.NDArray[Any]] = []
        for key, label, vector in items:
            key, label, array = _check_key(key), _check_label(label), np.asarray(vector)
            slot = slot_of.setdefault(key, len(keys))
            if slot == len(keys):
                keys.append(key)
                labels.append(label)
                raw.append(array)
            else:
                labels[slot], raw[slot] = label, array
        n = len(keys)
        store = self._new_store(max(self._min_capacity, n + n // 8))
        people: Counter[str] = Counter()
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            chunk_keys = keys[start:stop]
            units = self._units(_stack(raw[start:stop], self._dim, chunk_keys), chunk_keys)
            codes, errors = self._quantise(units)
            store.vectors[start:stop] = units
            store.codes[start:stop] = codes
            store.keys[start:stop] = chunk_keys
            store.labels[start:stop] = labels[start:stop]
            people.update(labels[start:stop])
            clipped = errors > self._error_cap
            store.outliers.update(chunk_keys[i] for i in np.flatnonzero(clipped).tolist())
            if not clipped.all():
                store.row_error = max(store.row_error, float(errors[~clipped].max()))
        store.count, store.slot_of, store.people = n, slot_of, people
        return store

    def _units(self, rows: npt.NDArray[Any], keys: Sequence[int] | None) -> F32:
        """Rows normalised to unit length; ValueError naming the first bad row's key (or 'query')."""
        if rows.ndim != 2 or rows.shape[1] != self._dim or not np.issubdtype(rows.dtype, np.number):
            raise ValueError(f"expected real vectors of {self._dim} values, got {rows.dtype} {rows.shape[1:]}")
        if np.iscomplexobj(rows):
            raise ValueError("complex vectors are not embeddings")
        values = rows.astype(np.float64)
        norms = np.linalg.norm(values, axis=1)
        bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0.0))
        if len(bad):
            what = "query" if keys is None else f"template {keys[int(bad[0])]}"
            raise ValueError(f"{what}: vector is zero or not finite")
        return (values / norms[:, None]).astype(np.float32)

    def _quantise(self, units: F32) -> tuple[I8, F64]:
        """int8 codes of unit rows and each row's L2 quantisation error."""
        scaled = units.astype(np.float64) * self._scale
        codes = np.clip(np.rint(scaled), -127.0, 127.0)
        errors = np.linalg.norm(scaled - codes, axis=1) / self._scale
        return codes.astype(np.int8), errors

    def _note_error(self, store: _Store, key: int, error: float) -> None:
        if error > self._error_cap:
            store.outliers.add(key)
        else:
            store.row_error = max(store.row_error, error)


def _stack(arrays: Sequence[npt.NDArray[Any]], dim: int, keys: Sequence[int]) -> npt.NDArray[Any]:
    """One 2-D array of vectors; ValueError naming the first of the wrong shape."""
    for key, array in zip(keys, arrays, strict=True):
        if array.shape != (dim,):
            raise ValueError(f"template {key}: expected {dim} values, got shape {array.shape}")
    return np.stack(arrays)


def _forget(people: Counter[str], label: str) -> None:
    people[label] -= 1
    if people[label] <= 0:
        del people[label]


def _check_key(key: int) -> int:
    if isinstance(key, bool):
        raise TypeError("a template key is an int")
    return operator.index(key)


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not label:
        raise ValueError("a template label is a non-empty string")
    return label


def _check_people(people: int) -> None:
    if people < 1:
        raise ValueError("people must be at least 1")
