"""The mobile API benchmark still runs end to end (tiny numbers, SQLite); no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

ROOT = REPO


def test_mobile_bench_runs_and_reports_every_call(tmp_path: Path) -> None:
    command = [sys.executable, "-W", "error", "-m", "bench.mobile_api", "--people", "300", "--events", "3000"]
    command += ["--residents", "5", "--requests", "3", "--reuse", str(tmp_path / "bench.db")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["people"] == 300
    assert figures["accounts"] == 5
    calls = figures["calls"]
    assert "POST /passes" in calls and "GET /me/events" in calls and "POST /auth/login (Argon2id)" in calls
    assert all(call["errors"] == 0 for call in calls.values()), calls
