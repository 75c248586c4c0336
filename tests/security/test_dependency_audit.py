"""The dependency audit fails on a known vulnerability that has a fix, and never passes an unaudited set silently."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.support import REPO


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", REPO / "scripts" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_vulnerability_with_a_fixed_release_fails_the_audit() -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "3.1.2", "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}]},
            {"name": "flask", "version": "3.1.3", "vulns": []},
        ]
    }
    status, lines = _audit().verdict(report)
    assert status == 1
    assert any("VULNERABLE" in line and "jinja2 3.1.2" in line and "3.1.3" in line for line in lines)


def test_a_vulnerability_without_a_fix_is_reported_but_does_not_fail() -> None:
    report = {"dependencies": [{"name": "ecdsa", "version": "0.19.0", "vulns": [{"id": "X", "fix_versions": []}]}]}
    status, lines = _audit().verdict(report)
    assert status == 0
    assert any("no fix released yet" in line and "ecdsa" in line for line in lines)


def test_packages_the_service_could_not_audit_are_named() -> None:
    report = {
        "dependencies": [
            {"name": "segno", "skip_reason": "not found"},
            {"name": "flask", "version": "3.1.3", "vulns": []},
        ]
    }
    status, lines = _audit().verdict(report)
    assert status == 0
    assert lines[0] == "pip-audit: 1 of 2 locked packages audited"
    assert any("not audited (1" in line and "segno" in line for line in lines)


def test_the_lock_pins_every_package_it_names() -> None:
    lines = [
        line for line in (REPO / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert lines, "requirements.lock is empty"
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
