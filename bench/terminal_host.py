"""Runs several door terminals (real TerminalRuntimes) in one process until SIGTERM.

python -m bench.terminal_host terminal1.toml terminal2.toml ...
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from terminals.config import load_terminal_config
from terminals.runtime import TerminalRuntime


def main() -> None:
    """Start one runtime per config file and stop them all on SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtimes = [TerminalRuntime(load_terminal_config(path), stop) for path in sys.argv[1:]]
    threads = [threading.Thread(target=r.run, daemon=True) for r in runtimes]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(20)


if __name__ == "__main__":
    main()
