"""PC/SC card reader driver: a card presented at a door's reader becomes one `CardPresented` with its UID.

Uses pyscard's `CardMonitor` (one library thread waiting on pcscd for card insertions and removals) with one
`CardObserver` per driver, and pyscard's `ReaderMonitor` to say in the log when the door's reader is unplugged
or back. For each card inserted into the door's reader the observer connects, sends the PC/SC pseudo-APDU
GET DATA (FF CA 00 00 00) and submits the UID it answers with 90 00. A card that answers an error, cannot be
connected, or sits in a reader that has just gone is logged and skipped; the driver carries on. A card already
in the reader when the driver starts is read once, like a new one.

The UID is a credential: it is never logged, only its length. pyscard is imported only when a driver starts,
so this module imports on machines without it; install it with `pip install 'gatehouse[pcsc]'` and run pcscd.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from terminals.inputs import CardPresented, Submit

log = logging.getLogger(__name__)

GET_DATA_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
"""PC/SC Part 3 GET DATA, P1=00: the card's UID (serial number), full length (Le=00)."""

INSTALL_HINT = "the PC/SC driver needs pyscard: pip install 'gatehouse[pcsc]' and the pcscd service"


class PcscUnavailable(RuntimeError):
    """pyscard is not installed, or pcscd cannot be reached, so the driver cannot start."""


def parse_uid_response(data: list[int], sw1: int, sw2: int) -> str | None:
    """The UID in upper-case hex from a GET DATA response, or None unless it is a non-empty UID with SW 90 00."""
    if (sw1, sw2) != (0x90, 0x00) or not data or not all(0 <= byte <= 0xFF for byte in data):
        return None
    return bytes(data).hex().upper()


@dataclass(frozen=True)
class _Pyscard:
    """The parts of pyscard the driver uses, imported on first start (pyscard has no type information)."""

    CardMonitor: Any
    CardObserver: Any
    ReaderMonitor: Any
    ReaderObserver: Any
    readers: Any
    errors: tuple[type[Exception], ...]
    """What pyscard raises for PC/SC failures (its two exception families share no base but Exception)."""


_lock = threading.Lock()
_loaded: _Pyscard | None = None
_reader_monitor: Any = None


def _pyscard() -> _Pyscard:
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                from smartcard.CardMonitoring import CardMonitor, CardObserver
                from smartcard.Exceptions import SmartcardException
                from smartcard.pcsc.PCSCExceptions import BaseSCardException
                from smartcard.ReaderMonitoring import ReaderMonitor, ReaderObserver
                from smartcard.System import readers
            except ImportError as exc:
                raise PcscUnavailable(INSTALL_HINT) from exc
            errors = (SmartcardException, BaseSCardException)
            _loaded = _Pyscard(CardMonitor, CardObserver, ReaderMonitor, ReaderObserver, readers, errors)
        return _loaded


def _shared_reader_monitor(sc: _Pyscard) -> Any:
    # Every ReaderMonitor() shares one state and its constructor empties the observer list, so all drivers in
    # the process share one instance, made once. Its thread starts with it and polls only while it has
    # observers; started on demand instead, removing the last observer right after the first was added
    # joins a thread that has not started yet and raises.
    global _reader_monitor
    with _lock:
        if _reader_monitor is None:
            _reader_monitor = sc.ReaderMonitor(startOnDemand=False)
        return _reader_monitor


class PcscReader:
    """A door's contactless reader on pcscd, found by a substring of its PC/SC name (None: the first reader)."""

    def __init__(self, door: int, reader: str | None = None) -> None:
        self.door = door
        self.reader = reader
        self._submit: Submit | None = None
        self._card_observer: Any = None
        self._reader_observer: Any = None

    def __repr__(self) -> str:
        return f"PcscReader(door={self.door}, reader={self.reader!r})"

    # ---- Driver -----------------------------------------------------------------------------------------------

    def start(self, submit: Submit) -> None:
        """Watch the reader; from now on each card inserted is read and submitted (from pyscard's thread)."""
        if self._card_observer is not None:
            raise RuntimeError(f"{self!r} is already started")
        sc = _pyscard()
        try:
            names = self._reader_names(sc)
        except sc.errors as exc:
            raise PcscUnavailable(f"cannot reach pcscd ({exc}): is the pcscd service running?") from exc
        if self._pick(names) is None:
            log.warning(
                "door %d: no PC/SC reader matches %s yet; cards are read once it appears", self.door, self._want
            )
        self._submit = submit
        self._reader_observer = _reader_observer(sc, self)
        self._card_observer = _card_observer(sc, self)
        _shared_reader_monitor(sc).addObserver(self._reader_observer)
        # Reports the cards already present at once, from this thread; later insertions come from pyscard's.
        sc.CardMonitor().addObserver(self._card_observer)

    def stop(self) -> None:
        """Stop reading: remove the observers (pyscard's card monitor thread itself runs on for the process)."""
        self._submit = None
        sc = _loaded
        if sc is None:
            return
        if self._card_observer is not None:
            sc.CardMonitor().deleteObserver(self._card_observer)
            self._card_observer = None
        if self._reader_observer is not None:
            _shared_reader_monitor(sc).deleteObserver(self._reader_observer)
            self._reader_observer = None

    # ---- events from pyscard's threads --------------------------------------------------------------------

    @property
    def _want(self) -> str:
        return "the first reader" if self.reader is None else repr(self.reader)

    def _matches(self, name: str) -> bool:
        return self.reader is None or self.reader in name

    def _pick(self, names: list[str]) -> str | None:
        """The reader this door uses among those listed now."""
        if self.reader is None:
            return names[0] if names else None
        return next((name for name in names if self.reader in name), None)

    @staticmethod
    def _reader_names(sc: _Pyscard) -> list[str]:
        return [str(reader) for reader in sc.readers()]

    def _card_inserted(self, sc: _Pyscard, card: Any) -> None:
        """Read one inserted card if it is in this door's reader; never raises (it runs in pyscard's thread)."""
        name = str(card.reader)
        try:
            if not self._matches(name) or (self.reader is None and self._pick(self._reader_names(sc)) != name):
                return
            uid = self._read_uid(sc, card, name)
        except sc.errors as exc:
            log.warning("door %d: could not read the card in %r: %s", self.door, name, exc)
            return
        except Exception:
            log.exception("door %d: unexpected error reading the card in %r", self.door, name)
            return
        submit = self._submit
        if uid is None or submit is None:
            return
        try:
            submit(CardPresented(door=self.door, uid=uid))
        except Exception:
            log.exception("door %d: the terminal loop did not take a card presentation", self.door)

    def _read_uid(self, sc: _Pyscard, card: Any, name: str) -> str | None:
        connection = card.createConnection()
        if connection is None:
            log.warning("door %d: reader %r is gone; the card in it was not read", self.door, name)
            return None
        try:
            connection.connect()
            data, sw1, sw2 = connection.transmit(GET_DATA_UID)
        finally:
            try:
                connection.release()
            except sc.errors as exc:
                log.warning("door %d: could not release the connection to %r: %s", self.door, name, exc)
        uid = parse_uid_response(data, sw1, sw2)
        if uid is None:
            log.warning(
                "door %d: card in %r answered GET DATA with SW %02X %02X and %d data bytes; not a UID, ignored",
                self.door,
                name,
                sw1,
                sw2,
                len(data),
            )
        return uid

    def _readers_changed(self, added: list[Any], removed: list[Any]) -> None:
        for reader in removed:
            if self._matches(str(reader)):
                log.warning(
                    "door %d: PC/SC reader %r disappeared; no cards are read until it is back", self.door, str(reader)
                )
        for reader in added:
            if self._matches(str(reader)):
                log.info("door %d: PC/SC reader %r is present", self.door, str(reader))


def _card_observer(sc: _Pyscard, driver: PcscReader) -> Any:
    """A pyscard CardObserver that hands each inserted card to `driver`."""

    base: Any = sc.CardObserver

    class DoorCardObserver(base):
        def update(self, observable: object, handlers: tuple[list[Any], list[Any]]) -> None:
            added, _removed = handlers
            for card in added:
                driver._card_inserted(sc, card)

    return DoorCardObserver()


def _reader_observer(sc: _Pyscard, driver: PcscReader) -> Any:
    """A pyscard ReaderObserver that logs the door's reader going away and coming back."""

    base: Any = sc.ReaderObserver

    class DoorReaderObserver(base):
        def update(self, observable: object, handlers: tuple[list[Any], list[Any]]) -> None:
            added, removed = handlers
            try:
                driver._readers_changed(added, removed)
            except Exception:
                log.exception("door %d: unexpected error handling a reader change", driver.door)

    return DoorReaderObserver()
