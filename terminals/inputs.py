"""What drivers hand to the terminal's loop: one immutable event per presentation at a door.

Drivers (card reader, keypad, camera, the local control interface) never decide anything and never
touch terminal state; they only build one of these and pass it to the loop's `submit`. Values are kept
in memory only for the moment of the decision: card UIDs and ID numbers are hashed before any lookup,
and no camera frame is ever part of an event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class CardPresented:
    """A card was read at a door's reader; `uid` is the hex UID from GET DATA (FF CA 00 00 00)."""

    door: int
    uid: str = field(repr=False)


@dataclass(frozen=True)
class IdEntered:
    """An ID-document number was typed or read by a document reader."""

    door: int
    number: str = field(repr=False)


@dataclass(frozen=True)
class CodeEntered:
    """Digits keyed in: a resident's 8-digit app code or a visitor's 6-digit pass code."""

    door: int
    digits: str = field(repr=False)


@dataclass(frozen=True)
class QrScanned:
    """The text of a QR code the camera decoded: a resident's app code or a visitor's signed pass token."""

    door: int
    text: str = field(repr=False)


@dataclass(frozen=True)
class FaceAttempt:
    """The face engine's verdict for one presentation: a matched pseudonym and template, or None.

    `ambiguous` marks a face that matched two people too closely to tell apart.
    """

    door: int
    person: str | None
    score: float = 0.0
    template: int | None = None
    ambiguous: bool = False


Presentation = CardPresented | IdEntered | CodeEntered | QrScanned | FaceAttempt
Submit = Callable[[Presentation], None]


class Driver(Protocol):
    """An input device: started with the loop's submit callback, stopped on shutdown."""

    def start(self, submit: Submit) -> None:
        """Begin delivering presentations (from the driver's own thread)."""

    def stop(self) -> None:
        """Stop delivering and release the device."""
