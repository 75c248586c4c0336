"""The geometry of the console's SVG charts: round scales, stacked segments, label spacing, bar rows."""

from __future__ import annotations

import itertools

import pytest

from server.console import charts


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [(0, (1, 1)), (1, (1, 1)), (3, (3, 1)), (7, (8, 2)), (10, (10, 5)), (48, (60, 20)), (95, (100, 50)),
     (101, (150, 50)), (2345, (3000, 1000))],
)  # fmt: skip
def test_nice_scale_rounds_up_to_a_round_step(maximum, expected):
    top, step = charts.nice_scale(maximum)
    assert (top, step) == expected
    assert top >= maximum and top % step == 0 and top / step <= 5


def test_stacked_columns_stack_each_series_bottom_up_on_one_scale():
    chart = charts.stacked_columns(["d1", "d2", "d3"], ["Card", "Face"], [[2, 1], [0, 0], [4, 4]], height=220)
    assert chart.maximum == 8 and [t.value for t in chart.ticks] == [0, 2, 4, 6, 8]
    # The zero tick sits on the axis, the top tick at the plot's top.
    assert chart.ticks[0].at == chart.bottom and chart.ticks[-1].at == chart.top
    first, empty, last = chart.columns
    assert [(s.series, s.name, s.value) for s in first.segments] == [(1, "Card", 2), (2, "Face", 1)]
    assert empty.segments == () and empty.total == 0
    card, face = last.segments
    unit = (chart.bottom - chart.top) / 8
    assert card.height == pytest.approx(4 * unit) and card.y + card.height == pytest.approx(chart.bottom)
    assert face.y + face.height == pytest.approx(card.y)  # on top of the card segment
    assert face.y == pytest.approx(chart.top)  # the tallest column reaches the top tick
    assert chart.legend == ((1, "Card", 6), (2, "Face", 5))


def test_columns_share_the_plot_width_without_overlapping():
    chart = charts.stacked_columns([str(i) for i in range(30)], ["Card"], [[i] for i in range(30)])
    assert chart.columns[0].x >= chart.left and chart.columns[-1].x + chart.columns[-1].width <= chart.right
    for before, after in itertools.pairwise(chart.columns):
        assert before.x + before.width < after.x
    # The y labels fit left of the plot: wider numbers move the plot right.
    wide = charts.stacked_columns(["a"], ["Card"], [[123456]])
    assert wide.left > chart.left


def test_day_labels_are_spaced_counting_back_from_the_last_column():
    days = [f"12-{d:02d}" for d in range(1, 31)]
    chart = charts.stacked_columns(days, ["Card"], [[1]] * 30, label_every=7)
    shown = [c.shown_label for c in chart.columns if c.shown_label]
    assert shown == ["12-02", "12-09", "12-16", "12-23", "12-30"]
    full = charts.stacked_columns(["2026-12-01"], ["Card"], [[1]], short_labels=["12-01"])
    assert full.columns[0].label == "2026-12-01" and full.columns[0].shown_label == "12-01"


def test_more_series_than_colours_is_refused():
    with pytest.raises(ValueError, match="at most 6"):
        charts.stacked_columns(["d"], list("abcdefg"), [[1] * 7])


def test_an_empty_chart_has_a_zero_scale_and_no_segments():
    chart = charts.stacked_columns(["d1", "d2"], ["Card"], [[0], [0]])
    assert chart.maximum == 0 and [t.value for t in chart.ticks] == [0, 1]
    assert all(c.segments == () for c in chart.columns)


def test_bars_scale_to_the_largest_and_leave_room_for_the_value():
    made = charts.bars([("Not recognised", 40), ("Outside the allowed hours", 10), ("Expired", 0)])
    big, small, none = made.bars
    assert big.width == pytest.approx(made.right - made.left)
    assert small.width == pytest.approx(big.width / 4)
    assert none.width == 0
    assert big.value_x > made.left + big.width and big.value_x < made.width
    # Each label sits on its own line above its bar, rows one under the other.
    assert big.label_y < big.y < small.label_y < small.y
    assert made.height > none.y + none.height and made.maximum == 40


def test_no_bars():
    made = charts.bars([])
    assert made.bars == () and made.maximum == 0


def test_column_shapes_draw_every_segment_and_escape_the_day_labels():
    chart = charts.stacked_columns(["<b>1</b>", "d2"], ["Card", "Face"], [[2, 1], [0, 3]], height=220)
    drawn = str(charts.column_shapes(chart))
    segments = [s for col in chart.columns for s in col.segments]
    assert drawn.count("<rect ") == len(segments) == 3 and drawn.count('<g class="column">') == 2
    for s in segments:
        assert f'<rect class="series-{s.series}" x="{s.x}" y="{s.y}" width="{s.width}" height="{s.height}">' in drawn
    assert "<b>" not in drawn and "&lt;b&gt;1&lt;/b&gt;" in drawn
