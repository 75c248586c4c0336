"""Add Chinese translations to the console's catalogue from a JSON file, then compile it.

    .venv/bin/python scripts/i18n_fill.py translations.json
The JSON maps each English msgid to its Chinese text (a list of forms for a plural entry). The script first
runs `scripts/i18n.sh update` (so every marked string is in the .po file), fills the given entries, writes the
.po file and compiles the .mo file, all under one lock, so people working side by side never overwrite each
other's entries. Entries the JSON does not name are left as they are."""

from __future__ import annotations

import fcntl
import json
import subprocess  # nosec B404  (runs this repository's own i18n script)
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "server/console/translations/zh_CN/LC_MESSAGES/messages.po"
LOCK = ROOT / ".venv" / "i18n.lock"  # inside the virtualenv: never committed


def main() -> int:
    wanted: dict[str, str | list[str]] = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([str(ROOT / "scripts/i18n.sh"), "update"], check=True)  # noqa: S603  # nosec B603
        with PO.open("rb") as f:
            catalog = read_po(f, locale="zh_CN")
        missing = []
        for msgid, text in wanted.items():
            message = catalog.get(msgid)
            if message is None:
                missing.append(msgid)
                continue
            message.string = tuple(text) if isinstance(text, list) else text
            message.flags.discard("fuzzy")
        with PO.open("wb") as f:
            write_po(f, catalog, width=120, omit_header=False, sort_output=True, include_lineno=False)
        subprocess.run([str(ROOT / "scripts/i18n.sh"), "compile"], check=True)  # noqa: S603  # nosec B603
    for msgid in missing:
        print(f"not in the source (mark it with _() first): {msgid!r}", file=sys.stderr)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    print(f"{len(wanted) - len(missing)} filled; {len(untranslated)} entries still without Chinese")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
