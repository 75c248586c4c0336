"""The relay and input drivers a terminal's config names; each driver's library is imported only if used."""

from __future__ import annotations

from terminals.config import TerminalConfig
from terminals.door_inputs import DoorInputs, DoorLines, SimulatedDoorInputs
from terminals.face_service import FaceService
from terminals.inputs import Driver
from terminals.relay import Relay, SimulatedRelay


def make_relay(config: TerminalConfig) -> Relay:
    """The relay driver the config names."""
    if config.relay.driver == "gpio":
        from terminals.relay import GpioRelay

        lines = {int(door): line for door, line in config.relay.gpio_lines.items()}
        return GpioRelay(config.relay.gpio_chip, lines, active_low=config.relay.active_low)
    return SimulatedRelay()


def make_door_inputs(config: TerminalConfig) -> DoorInputs | None:
    """The driver of the configured door contacts and exit buttons; None if no door has any."""
    if not config.doors:
        return None
    doors = [
        DoorLines(d.door, d.contact_line, d.rex_line, d.contact_active_low, d.rex_active_low) for d in config.doors
    ]
    if config.door_inputs.driver == "gpio":
        from terminals.door_inputs import GpioDoorInputs

        return GpioDoorInputs(config.door_inputs.gpio_chip, doors, debounce_ms=config.door_inputs.debounce_ms)
    return SimulatedDoorInputs(doors)


def make_drivers(config: TerminalConfig, faces: FaceService | None = None) -> list[Driver]:
    """Input drivers for the configured card readers, keypads and cameras (with face, given the face service)."""
    drivers: list[Driver] = []
    for reader in config.card_readers:
        from terminals.drivers.pcsc import PcscReader

        drivers.append(PcscReader(reader.door, reader.reader))
    for keypad in config.keypads:
        from terminals.drivers.keypad import LineKeypad

        drivers.append(LineKeypad(keypad.door, keypad.device))
    for camera in config.cameras:
        from terminals.drivers.qr import CameraQrReader, OpenCvCamera

        looker = faces.looker(camera.door) if faces is not None and camera.face else None
        drivers.append(
            CameraQrReader(camera.door, OpenCvCamera(camera.device), fps_limit=camera.fps, face=looker, qr=camera.qr)
        )
    return drivers
