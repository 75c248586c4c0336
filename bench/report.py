"""The output convention every benchmark follows: a readable table, then one JSON object as the last line."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from typing import Any


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, mean, min and max of a sample."""
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def emit(name: str, rows: list[tuple[str, str]], figures: dict[str, Any]) -> None:
    """Print the table, then the JSON line (name, figures, machine)."""
    width = max(len(label) for label, _ in rows)
    print(f"{name}")
    print("-" * (width + 20))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(json.dumps({"benchmark": name, **figures, "machine": machine()}, sort_keys=True))
