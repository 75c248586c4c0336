"""Audit the locked dependency set with pip-audit; fail on a known vulnerability that has a fixed release.

Usage: python scripts/audit_deps.py requirements.lock

pip-audit reads the lock without installing anything (--no-deps --disable-pip). A vulnerability without any fixed
release is reported but does not fail the run (there is nothing to upgrade to); one with a fix fails it. Packages the
vulnerability service could not answer for are listed, so an audit that checked nothing never passes silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def verdict(report: dict[str, Any]) -> tuple[int, list[str]]:
    """Exit status and readable lines for a pip-audit JSON report: 1 when any vulnerability has a fixed release."""
    fixable: list[str] = []
    unfixed: list[str] = []
    skipped: list[str] = []
    deps = report.get("dependencies", [])
    for dep in deps:
        name, version = dep.get("name"), dep.get("version")
        if "skip_reason" in dep:
            skipped.append(name if version is None else f"{name} {version}")
            continue
        for vuln in dep.get("vulns", []):
            line = f"{name} {version}: {vuln['id']} (fixed in {', '.join(vuln['fix_versions']) or 'no release yet'})"
            (fixable if vuln.get("fix_versions") else unfixed).append(line)
    lines = [f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} locked packages audited"]
    lines += [f"  known, no fix released yet: {line}" for line in unfixed]
    if skipped:
        lines.append(f"  not audited ({len(skipped)}; the vulnerability service had no answer): {', '.join(skipped)}")
    lines += [f"  VULNERABLE, upgrade: {line}" for line in fixable]
    return (1 if fixable else 0), lines


def main(lock: str) -> int:
    """Run pip-audit on `lock` and return the exit status this script should have."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "audit.json"
        command = [
            sys.executable, "-m", "pip_audit", "-r", lock, "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "--format", "json", "--output", str(report_path),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
        if not report_path.exists():
            print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
            print("error: pip-audit produced no report", file=sys.stderr)
            return 2
        report = json.loads(report_path.read_text())
    status, lines = verdict(report)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock"))
