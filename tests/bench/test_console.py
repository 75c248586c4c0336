"""The console benchmark still runs end to end (tiny numbers, SQLite); no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

ROOT = REPO
PAGES = ("people list", "person page", "events (filtered)", "dashboard", "audit log")


def test_console_bench_runs_and_reports_every_page(tmp_path: Path) -> None:
    db_file = tmp_path / "bench.db"
    command = [sys.executable, "-W", "error", "-m", "bench.console", "--people", "200", "--events", "2000"]
    command += ["--requests", "3", "--reuse", str(db_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for page in PAGES:
        assert any(line.startswith(page) and ("p95" in line or "missing" in line) for line in lines), done.stdout
    figures = json.loads(lines[-1])
    assert figures["people"] == 200
    assert figures["events"] == 2000
    assert set(figures["pages"]) == set(PAGES)

    # A second run reuses the seeded file instead of seeding again.
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reused" in again.stdout
    assert json.loads(again.stdout.splitlines()[-1])["people"] == 200
