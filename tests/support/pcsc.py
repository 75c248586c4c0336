"""The PC/SC rig for integration tests: a real pcscd with vsmartcard's virtual readers, and virtual cards.

`PcscStack` uses the machine's pcscd if one answers on its socket, and otherwise runs
`pcscd --foreground --auto-exit` as a child. The vsmartcard-vpcd driver gives pcscd the readers
'Virtual PCD 00 00' and 'Virtual PCD 00 01', which take virtual cards over TCP on ports 35963 and 35964.
`VirtualCard` runs tests/support/virtual_card.py with Debian's /usr/bin/python3 (where python3-virtualsmartcard
lives): the card is in the reader while that process runs and leaves it when the process is killed.

Ports and reader names are fixed by vpcd's configuration, so one rig serves the whole machine: a lock file
keeps concurrent test sessions from sharing the virtual reader. Without the pcscd binary the tests are
skipped, unless GATEHOUSE_REQUIRE_PCSC=1 makes that a failure (CI sets it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

from tests.support.daemons import ServiceError

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VIRTUAL_READER = "Virtual PCD 00 00"
VPCD_PORT = 35963  # vpcd's port for 'Virtual PCD 00 00'
CARD_PYTHON = "/usr/bin/python3"
CARD_PROGRAM = Path(__file__).with_name("virtual_card.py")
APT_PACKAGES = "pcscd vsmartcard-vpcd python3-virtualsmartcard python3-pycryptodome"
LOCK_PATH = Path(tempfile.gettempdir()) / "gatehouse-pcsc-rig.lock"
REQUIRE_ENV = "GATEHOUSE_REQUIRE_PCSC"


def _poll(
    predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until `predicate` holds; fail saying what was awaited, or early if `proc` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _pcscd_answers() -> bool:
    """Whether something accepts connections on pcscd's socket (a running pcscd, or systemd's pcscd.socket)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(PCSCD_SOCKET))
        except OSError:
            return False
        return True


def _pcscd_binary() -> str | None:
    found = shutil.which("pcscd") or "/usr/sbin/pcscd"
    return found if Path(found).exists() else None


def _stop_card_monitor() -> None:
    """Stop pyscard's process-wide card monitor thread and forget it, as if no CardMonitor had been made.

    pyscard starts that thread with the first CardMonitor() and never stops it. When its pcscd goes away
    the thread prints a traceback and ends for good, and the CardMonitor singleton keeps pointing at it, so
    a later pcscd would never be watched. The thread waits in SCardGetStatusChange; SCardCancel wakes it.
    """
    from smartcard.CardMonitoring import CardMonitor, CardMonitoringThread
    from smartcard.scard import SCardCancel

    thread = CardMonitoringThread.instance
    if thread is not None:
        thread.stop()
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            request = thread.cardrequest
            context = request.pcsccardrequest.hcontext if request is not None else None
            if context is not None:
                SCardCancel(context)
            thread.join(0.1)
        CardMonitoringThread.instance = None
    CardMonitor.instance = None


class PcscStack:
    """A reachable pcscd with the vpcd virtual readers, for one test module (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.log_path = base / "pcscd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock: IO[bytes] | None = None
        self.context: Any = None

    def start(self) -> None:
        """Make sure pcscd runs and lists the virtual reader (skip or fail as the module docstring says)."""
        try:
            import smartcard.System  # noqa: F401 - fail here, with the fix, rather than in a test
        except ImportError:
            raise ServiceError("pyscard missing: pip install -e '.[pcsc]' (needs libpcsclite-dev and swig)") from None
        self.base.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            if not _pcscd_answers():
                self._start_pcscd()
            self._connect()
            _poll(lambda: VIRTUAL_READER in self.reader_names(), 20, f"pcscd to list {VIRTUAL_READER!r}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop pyscard's card monitor, release the context, stop the pcscd this stack started, drop the lock."""
        with contextlib.suppress(ImportError):
            _stop_card_monitor()
        if self.context is not None:
            from smartcard.scard import SCardReleaseContext

            SCardReleaseContext(self.context)
            self.context = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def reader_names(self) -> list[str]:
        """The PC/SC reader names pcscd lists now."""
        from smartcard.System import readers

        return [str(reader) for reader in readers()]

    def card_present(self, reader: str = VIRTUAL_READER) -> bool:
        """Whether pcscd reports a card in `reader` now."""
        from smartcard.scard import SCARD_S_SUCCESS, SCARD_STATE_PRESENT, SCARD_STATE_UNAWARE, SCardGetStatusChange

        hresult, states = SCardGetStatusChange(self.context, 0, [(reader, SCARD_STATE_UNAWARE)])
        if hresult != SCARD_S_SUCCESS:
            raise ServiceError(f"SCardGetStatusChange on {reader!r} failed with {hresult:#010x}")
        return bool(states[0][1] & SCARD_STATE_PRESENT)

    def card(self) -> VirtualCard:
        """A virtual card for 'Virtual PCD 00 00' (use it as a context manager so it is always removed)."""
        return VirtualCard(self)

    # ---- internals ------------------------------------------------------------------------------------------------

    def _take_lock(self, timeout: float = 300.0) -> None:
        lock = open(LOCK_PATH, "ab")  # noqa: SIM115 - held open for the stack's lifetime
        try:
            _poll(lambda: _try_lock(lock), timeout, f"the PC/SC rig lock {LOCK_PATH} (another test session has it)")
        except BaseException:
            lock.close()
            raise
        self._lock = lock

    def _start_pcscd(self) -> None:
        exe = _pcscd_binary()
        if exe is None:
            reason = f"pcscd not found: install {APT_PACKAGES} (scripts/test.sh does)"
            if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
                raise ServiceError(f"{reason}; {REQUIRE_ENV} is set, so this fails instead of skipping")
            pytest.skip(reason)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for pcscd's lifetime
        self.proc = subprocess.Popen(
            [exe, "--foreground", "--auto-exit"], stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        try:
            _poll(_pcscd_answers, 20, f"pcscd to listen on {PCSCD_SOCKET}", self.proc)
        except ServiceError as exc:
            hint = "" if os.geteuid() == 0 else " (pcscd must run as root to create its socket)"
            raise ServiceError(f"{exc}{hint}; pcscd said:\n{self.log_path.read_text(errors='replace')}") from None

    def _connect(self) -> None:
        """Hold a PC/SC context for the stack's lifetime (it also keeps `--auto-exit` from stopping pcscd)."""
        from smartcard.scard import SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCardEstablishContext

        hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
        if hresult != SCARD_S_SUCCESS:
            raise ServiceError(f"SCardEstablishContext failed with {hresult:#010x}: is pcscd running?")
        self.context = context

    def __enter__(self) -> PcscStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _try_lock(lock: IO[bytes]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class VirtualCard:
    """A card for 'Virtual PCD 00 00': `present(uid)` puts it in the reader, `remove()` takes it out."""

    def __init__(self, stack: PcscStack, reader: str = VIRTUAL_READER, port: int = VPCD_PORT) -> None:
        self.stack = stack
        self.reader = reader
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = stack.base / "virtual_card.log"

    def present(self, uid_hex: str, *, uid_support: bool = True, timeout: float = 20.0) -> None:
        """Insert a card with this UID; returns once pcscd reports it. Without `uid_support` GET DATA answers 6A 81."""
        if self.proc is not None:
            raise RuntimeError("a card is already in the reader: remove() it first")
        if not Path(CARD_PYTHON).exists():
            raise ServiceError(f"{CARD_PYTHON} not found: the virtual card needs Debian's python3 and {APT_PACKAGES}")
        args = [CARD_PYTHON, str(CARD_PROGRAM), uid_hex, "--port", str(self.port)]
        if not uid_support:
            args.append("--no-uid")
        with open(self.log_path, "ab") as log:
            # Debian's python3 must not see the venv's environment (PYTHONPATH, PYTHONHOME from an activated venv).
            env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        try:
            _poll(lambda: self.stack.card_present(self.reader), timeout, f"a card in {self.reader!r}", self.proc)
        except ServiceError as exc:
            self.remove()
            said = self.log_path.read_text(errors="replace")[-4000:]
            raise ServiceError(f"{exc}; needs {APT_PACKAGES}; the virtual card said:\n{said}") from None

    def remove(self, timeout: float = 20.0) -> None:
        """Take the card out (kill its process); returns once pcscd reports the reader empty."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        _poll(lambda: not self.stack.card_present(self.reader), timeout, f"{self.reader!r} to be empty")

    def __enter__(self) -> VirtualCard:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()
