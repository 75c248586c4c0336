"""The person page's words: schedule lines on the 24-hour clock, and photo quality as pass/fail with thresholds."""

from __future__ import annotations

import pytest
from flask import Flask

from gatehouse_core.face.quality import QualityLimits
from server.console.person.words import gate_thresholds, gates, schedule_text, schedule_texts
from server.services.access.reach import ScheduleLine

DASH = "\u2013"


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (ScheduleLine(0, 6, ((0, 1440),)), f"Every day 00:00{DASH}24:00"),
        (ScheduleLine(0, 4, ((420, 1320),)), f"Mon{DASH}Fri 07:00{DASH}22:00"),
        (ScheduleLine(5, 5, ((540, 720), (840, 1080))), f"Sat 09:00{DASH}12:00, 14:00{DASH}18:00"),
    ],
)
def test_schedule_lines_read_as_text(app: Flask, line: ScheduleLine, text: str) -> None:
    with app.test_request_context():
        assert schedule_text(line) == text


def test_a_group_without_hours_says_so(app: Flask) -> None:
    with app.test_request_context():
        assert schedule_texts(()) == ["No hours: this group opens nothing"]


def test_quality_gates_pass_or_fail_against_their_thresholds(app: Flask) -> None:
    figures = {
        "face_px": 150.0,
        "score": 0.55,
        "sharpness": 182.4,
        "contrast": 40.0,
        "yaw_deg": -40.0,
        "pitch_deg": 3.0,
        "roll_deg": 1.0,
    }
    limits = QualityLimits(min_sharpness=100.0)
    with app.test_request_context():
        shown = {g.label: g for g in gates(figures, gate_thresholds(limits, enroll_score=0.6))}
        assert shown["Sharpness"].text() == "Sharpness 182.4 \u2014 pass (needs \u2265 100)"
        assert shown["Detector score"].text() == "Detector score 0.55 \u2014 fail (needs \u2265 0.6)"
        assert shown["Head turned (degrees)"].text() == "Head turned (degrees) -40 \u2014 fail (needs \u2264 35)"
        assert shown["Face size (pixels)"].passed and len(shown) == 7


def test_a_gate_without_a_known_threshold_is_left_out(app: Flask) -> None:
    with app.test_request_context():
        shown = gates({"score": 0.9, "sharpness": 50.0}, gate_thresholds(QualityLimits(), enroll_score=None))
        assert [g.label for g in shown] == ["Sharpness"]
