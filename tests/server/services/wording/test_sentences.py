"""Every refusal a service writes is a full sentence: a capital first, a full stop last (issue 19)."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[4] / "server" / "services"
REFUSALS = {"RuleViolation", "Conflict", "NotFound", "DomainError", "FaceUnavailable", "PhotoRejected", "Forbidden"}


def _refusal_texts() -> list[tuple[str, str]]:
    found = []
    for path in SERVICES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in REFUSALS:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
            elif isinstance(first, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in first.values)
            else:
                continue
            found.append((f"{path.relative_to(SERVICES)}:{node.lineno}", text))
    return found


def test_service_refusals_are_full_sentences() -> None:
    texts = _refusal_texts()
    assert len(texts) > 50  # the scan still finds them
    terse = [(where, text) for where, text in texts if not (text[:1].isupper() and text.rstrip().endswith((".", "?")))]
    assert terse == []
