"""Geometry of the console's server-drawn SVG charts: scales, ticks and bar rectangles from plain numbers.

Pure functions of their inputs (no Flask, no database): templates draw the shapes these return, and the CSS
classes `series-1` .. `series-6` colour them. Coordinates are SVG user units inside a viewBox of WIDTH units,
so a chart scales down with its container on a narrow screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colours the stylesheet defines (--series-1 .. --series-6); more series than this share an "other" one.
SERIES = 6
WIDTH = 480
# Space for the tick numbers left of the plot: about this many units per digit, at the charts' text size.
DIGIT = 8.5
FONT = 13


@dataclass(frozen=True)
class Tick:
    """A value on the axis and where it sits (y of a column chart, x of a bar chart)."""

    value: int
    at: float


@dataclass(frozen=True)
class Segment:
    """One series' part of one column."""

    x: float
    y: float
    width: float
    height: float
    series: int  # 1..SERIES: the CSS class series-N
    name: str  # the series' name, for the segment's tooltip
    value: int


@dataclass(frozen=True)
class Column:
    """One category of a column chart (a day), its stacked segments bottom up, and its label if shown."""

    label: str
    shown_label: str | None  # drawn under the axis; None where labels would crowd
    x: float
    width: float
    center: float
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class StackedColumns:
    """A stacked column chart: plot box, y ticks, columns and the legend's series (class number, name)."""

    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float  # y of the zero line
    ticks: tuple[Tick, ...]
    columns: tuple[Column, ...]
    legend: tuple[tuple[int, str, int], ...]  # (class number, name, the series' sum over every column)
    maximum: int


def column_shapes(chart: StackedColumns) -> Markup:
    """The columns' SVG shapes and day labels, drawn in one pass (a Jinja loop spent 10 ms on 200 rectangles).

    Coordinates are numbers and class names digits; only the day labels are text, and they are escaped.
    """
    parts: list[str] = []
    for col in chart.columns:
        parts.append('<g class="column">')
        parts.extend(
            f'<rect class="series-{s.series:d}" x="{s.x}" y="{s.y}" width="{s.width}" height="{s.height}"></rect>'
            for s in col.segments
        )
        if col.shown_label:
            label = escape(col.shown_label)
            parts.append(
                f'<text class="day" x="{col.center}" y="{chart.bottom + 16}" text-anchor="middle">{label}</text>'
            )
        parts.append("</g>")
    return Markup("".join(parts))  # noqa: S704  # nosec B704  (numbers and escaped labels only)


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: its label above the bar, the bar and the value after it."""

    label: str
    value: int
    label_y: float
    y: float
    width: float
    height: float
    value_x: float
    value_y: float


@dataclass(frozen=True)
class Bars:
    """A horizontal bar chart, one row per item, largest scale at the plot's right edge."""

    width: float
    height: float
    left: float
    right: float
    axis_y: float  # y of the axis line under the last bar
    bars: tuple[Bar, ...]
    maximum: int


def nice_scale(maximum: int, ticks: int = 4) -> tuple[int, int]:
    """(top, step): a round step (1, 2 or 5 times a power of ten) and the first multiple of it >= `maximum`."""
    if maximum <= 0:
        return 1, 1
    raw = maximum / ticks
    power = 10 ** max(0, math.floor(math.log10(raw))) if raw >= 1 else 1
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    return step * math.ceil(maximum / step), step


def stacked_columns(
    categories: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[int]],
    *,
    short_labels: Sequence[str] | None = None,
    label_every: int = 1,
    width: float = WIDTH,
    height: float = 220,
) -> StackedColumns:
    """Columns of `values[category][series]` stacked in series order, with round y ticks.

    Labels under the axis are drawn for every `label_every`-th column counting back from the last, so the
    latest (today) is always named. `short_labels` replace `categories` under the axis (full ones go to tooltips).
    """
    if len(series) > SERIES:
        raise ValueError(f"at most {SERIES} series; merge the smallest into one")
    totals = [sum(row) for row in values]
    top_value, step = nice_scale(max(totals, default=0))
    left = DIGIT * len(str(top_value)) + 12
    top, right = 8.0, width - 20  # room for half of the last day's label
    bottom = height - 24  # room for the day labels
    plot_w, plot_h = right - left, bottom - top
    slot = plot_w / max(len(categories), 1)
    gap = min(4.0, slot * 0.2)
    scale = plot_h / top_value
    ticks = tuple(Tick(v, round(bottom - v * scale, 2)) for v in range(0, top_value + 1, step))
    shorts = short_labels or categories
    last = len(categories) - 1
    columns = []
    for i, (category, row) in enumerate(zip(categories, values, strict=True)):
        x = left + i * slot + gap / 2
        y = bottom
        segments = []
        for s, (name, value) in enumerate(zip(series, row, strict=True)):
            if value <= 0:
                continue
            h = value * scale
            y -= h
            segments.append(Segment(round(x, 2), round(y, 2), round(slot - gap, 2), round(h, 2), s + 1, name, value))
        shown = shorts[i] if (last - i) % max(label_every, 1) == 0 else None
        column_w = round(slot - gap, 2)
        center = round(x + (slot - gap) / 2, 2)
        columns.append(Column(category, shown, round(x, 2), column_w, center, totals[i], tuple(segments)))
    legend = tuple((s + 1, name, sum(row[s] for row in values)) for s, name in enumerate(series))
    return StackedColumns(
        width, height, round(left, 2), top, right, bottom, ticks, tuple(columns), legend, max(totals, default=0)
    )


def bars(items: Sequence[tuple[str, int]], *, width: float = WIDTH, row: float = 38) -> Bars:
    """Horizontal bars, one per (label, value), each label on its own line above its bar (long words fit)."""
    maximum = max((value for _, value in items), default=0)
    value_room = DIGIT * len(str(maximum)) + 10
    left, right = 2.0, width - value_room
    scale = (right - left) / maximum if maximum else 0.0
    made = []
    for i, (label, value) in enumerate(items):
        base = i * row
        length = round(value * scale, 2)
        made.append(
            Bar(label, value, base + FONT, base + FONT + 5, length, 14.0, round(left + length + 6, 2), base + FONT + 16)
        )
    height = len(items) * row + 6
    return Bars(width, height, left, right, height - 4, tuple(made), maximum)
