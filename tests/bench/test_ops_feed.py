"""The operations feed benchmark still runs end to end (tiny numbers, SQLite); no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO


def test_ops_feed_bench_runs_and_delivers_every_event_once() -> None:
    command = [sys.executable, "-W", "error", "-m", "bench.ops_feed"]
    command += ["--doors", "10", "--rate", "20", "--seconds", "1.5", "--clients", "2"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("commit -> screen, ms") for line in lines), done.stdout
    figures = json.loads(lines[-1])
    assert figures["benchmark"] == "ops_feed" and figures["doors"] == 10 and figures["clients"] == 2
    assert figures["events"] > 0 and figures["delivered"] == 2 * figures["events"]
    assert figures["missing"] == 0 and figures["duplicates"] == 0
