"""A terminal's config file (TOML), validated; see config/terminal.example.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gatehouse_core.configfile import StrictModel, load_config
from gatehouse_core.configtypes import ConfigPath, LogLevel, MqttConfig
from gatehouse_core.face.config import FaceEngineConfig
from gatehouse_core.wire.topics import TopicError, check_ident

DoorId = int


class CardReaderConfig(StrictModel):
    """A PC/SC card reader at one door."""

    door: DoorId = Field(ge=1, description="Door (id from the console) this reader opens.")
    reader: str | None = Field(
        None, description="Part of the PC/SC reader name (see `pcsc_scan`); the first reader if omitted."
    )


class CameraConfig(StrictModel):
    """A camera at one door, read for QR codes and, if the terminal has a [face] section, for faces."""

    door: DoorId = Field(ge=1, description="Door this camera watches.")
    device: int | str = Field(0, description="OpenCV capture device: an index such as 0, or a path/URL.")
    fps: float = Field(15.0, gt=0, le=60, description="Frames per second to examine at most.")
    face: bool = Field(True, description="Look for faces (only with a [face] section and a door that takes face).")
    qr: bool = Field(True, description="Look for QR codes.")


class TerminalFaceConfig(FaceEngineConfig):
    """Face entry at this terminal's cameras: the engine, the near zone and the fallback."""

    near_zone_px: float = Field(
        90,
        ge=32,
        le=2000,
        description="Least face size (pixels of the frame) of someone at the door; smaller "
        "faces (people passing behind) are ignored.",
    )
    detect_side: int = Field(320, ge=160, le=1920, description="Frames are searched for faces at this size.")
    attempts: int = Field(
        3, ge=1, le=20, description="Frames without a match before the person is asked to use card, ID or code."
    )
    presence_gap_s: float = Field(1.0, gt=0, le=30, description="Seconds without a face that end a presentation.")
    pad: Literal["multi_frame_consistency", "none"] = Field(
        "multi_frame_consistency",
        description="Presentation-attack check: consecutive frames must agree and move (not certified; see README).",
    )
    pad_frames: int = Field(2, ge=1, le=10, description="Consecutive agreeing frames the PAD check needs.")
    sync_wait_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="After start or a reconnect, faces are not matched until the server confirms this terminal "
        "has every deletion made meanwhile; with no answer and no sync progress for this many seconds, "
        "matching resumes on the roster held (cards, ID documents and codes work throughout).",
    )


class KeypadConfig(StrictModel):
    """A keypad or ID-document reader at one door that sends one line per entry."""

    door: DoorId = Field(ge=1, description="Door this keypad is at.")
    device: ConfigPath = Field(description="Line device it sends entries on, e.g. /dev/ttyUSB0 or a FIFO.")


class RelayConfig(StrictModel):
    """The door relay driver."""

    driver: Literal["simulated", "gpio"] = Field(
        "simulated", description="'simulated' logs instead of switching; 'gpio' drives GPIO lines (libgpiod)."
    )
    pulse_ms: int = Field(3000, ge=200, le=60000, description="How long a granted door stays unlocked.")
    gpio_chip: str = Field("/dev/gpiochip0", description="GPIO chip device, for the gpio driver.")
    gpio_lines: dict[str, int] = Field(
        default_factory=dict, description='Door id → GPIO line offset, e.g. { "3" = 17 }, for the gpio driver.'
    )
    active_low: bool = Field(False, description="Whether the relay closes on a low level.")

    @model_validator(mode="after")
    def _lines_for_gpio(self) -> RelayConfig:
        if self.driver == "gpio" and not self.gpio_lines:
            raise ValueError("the gpio relay driver needs gpio_lines (door id → line offset)")
        for door in self.gpio_lines:
            if not door.isdigit():
                raise ValueError(f"gpio_lines keys are door ids (digits), not {door!r}")
        return self


class DoorInputsConfig(StrictModel):
    """The driver of the doors' contacts and exit buttons ([[doors]])."""

    driver: Literal["simulated", "gpio"] = Field(
        "simulated",
        description="'simulated' is driven by `gatehouse-terminal door open|close|exit`; 'gpio' reads GPIO lines "
        "(libgpiod v2).",
    )
    gpio_chip: str = Field("/dev/gpiochip0", description="GPIO chip device of the input lines, for the gpio driver.")
    debounce_ms: int = Field(
        50, ge=0, le=1000, description="A line must hold a new level this long before it counts (contact bounce)."
    )


class DoorConfig(StrictModel):
    """One door's supervision inputs; a door without a contact is not supervised (locked/unlocked only)."""

    door: DoorId = Field(ge=1, description="Door (id from the console).")
    contact_line: int | None = Field(
        None, ge=0, le=1023, description="Input line of the door contact (active = open); omitted: no contact."
    )
    rex_line: int | None = Field(
        None, ge=0, le=1023, description="Input line of the request-to-exit button (active = pressed); omitted: none."
    )
    contact_active_low: bool = Field(False, description="The contact line reads low when the door is open.")
    rex_active_low: bool = Field(False, description="The exit button line reads low when pressed.")
    held_open_seconds: float = Field(
        30,
        gt=0,
        le=3600,
        description="A door opened with a grant or exit request and still open this many seconds after it opened "
        "is held open (alarm). The unlock time itself is relay.pulse_ms.",
    )

    @model_validator(mode="after")
    def _some_input(self) -> DoorConfig:
        if self.contact_line is None and self.rex_line is None:
            raise ValueError(f"door {self.door} names neither contact_line nor rex_line")
        if self.contact_line is not None and self.contact_line == self.rex_line:
            raise ValueError(f"door {self.door}'s contact and exit button are on the same line")
        return self


class LockoutConfig(StrictModel):
    """When wrong typed codes lock the keypad, and wrong app-code QRs their one credential (see lockout.py)."""

    threshold: int = Field(
        5,
        ge=2,
        le=50,
        description="Wrong typed codes or ID numbers (or wrong codes in one credential's QRs) before a lockout.",
    )
    window_s: float = Field(900, gt=0, description="Seconds within which those wrong attempts count.")
    first_lockout_s: float = Field(30, gt=0, description="Length of the first lockout; each further one doubles.")
    max_lockout_s: float = Field(3600, gt=0, description="Longest lockout.")
    quiet_reset_s: float = Field(3600, gt=0, description="Quiet seconds after which lockouts start short again.")


class TerminalConfig(StrictModel):
    """Settings of `gatehouse terminal run`."""

    terminal_id: str = Field(description="Identity given by `gatehouse terminal add`; also the broker username.")
    site: str = Field(description="Code of the site this terminal belongs to.")
    data_dir: ConfigPath = Field(description="Where the terminal keeps its local store (roster, outbox).")
    server_public_key: ConfigPath = Field(
        description="The server's Ed25519 public key (signing_ed25519.pub.pem); messages not signed by it are ignored."
    )
    seal_key_file: ConfigPath = Field(
        description="This terminal's seal key (written by `gatehouse terminal add`, mode 0600): decrypts its "
        "face templates and app-code seeds, which stay encrypted on disk."
    )
    credential_key_file: ConfigPath = Field(
        description="The site's credential-hashing key (written by `gatehouse terminal add`, mode 0600): card UIDs, "
        "ID numbers and visitor codes are hashed with it before any lookup, never kept in clear."
    )
    log_level: LogLevel = Field("INFO", description="Log verbosity.")
    mqtt: MqttConfig = Field(description="The site's broker.")
    control_socket: ConfigPath | None = Field(
        None,
        description="Unix socket of the local control interface (simulation, guard tools); "
        "default control.sock in data_dir. Only the terminal's own user can use it.",
    )
    card_readers: list[CardReaderConfig] = Field(default_factory=list, description="PC/SC readers, one per door.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras read for QR codes.")
    keypads: list[KeypadConfig] = Field(default_factory=list, description="Keypads / ID readers, one line per entry.")
    relay: RelayConfig = Field(default_factory=RelayConfig, description="Door relay.")  # type: ignore[arg-type]
    lockout: LockoutConfig = Field(default_factory=LockoutConfig, description="Keypad lockout.")  # type: ignore[arg-type]
    door_inputs: DoorInputsConfig = Field(
        default_factory=DoorInputsConfig,  # type: ignore[arg-type]
        description="Driver of the door contacts and exit buttons.",
    )
    doors: list[DoorConfig] = Field(
        default_factory=list, description="Door contacts and exit buttons, one entry per supervised door."
    )
    face: TerminalFaceConfig | None = Field(
        None, description="Face entry; without it this terminal's cameras read QR codes only."
    )

    def face_doors(self) -> list[int]:
        """Doors whose camera looks for faces."""
        if self.face is None:
            return []
        return sorted({c.door for c in self.cameras if c.face})

    @model_validator(mode="after")
    def _door_inputs_apart(self) -> TerminalConfig:
        seen: set[int] = set()
        lines: dict[int, str] = {}
        inputs, relay = self.door_inputs, self.relay
        if inputs.driver == "gpio" and relay.driver == "gpio" and inputs.gpio_chip == relay.gpio_chip:
            lines = {line: f"door {door}'s relay" for door, line in relay.gpio_lines.items()}
        for entry in self.doors:
            if entry.door in seen:
                raise ValueError(f"door {entry.door} appears twice in [[doors]]")
            seen.add(entry.door)
            if entry.rex_line is not None and relay.driver == "gpio" and str(entry.door) not in relay.gpio_lines:
                raise ValueError(f"door {entry.door} has an exit button but no relay line in relay.gpio_lines to open")
            if inputs.driver != "gpio":
                continue
            for line, what in ((entry.contact_line, "contact"), (entry.rex_line, "exit button")):
                if line is None:
                    continue
                if line in lines:
                    raise ValueError(f"GPIO line {line} is both door {entry.door}'s {what} and {lines[line]}")
                lines[line] = f"door {entry.door}'s {what}"
        return self

    @field_validator("terminal_id", "site")
    @classmethod
    def _ident(cls, value: str) -> str:
        try:
            return check_ident(value, "identifier")
        except TopicError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("mqtt")
    @classmethod
    def _username_is_identity(cls, mqtt: MqttConfig, info: ValidationInfo) -> MqttConfig:
        terminal_id = info.data.get("terminal_id")
        if mqtt.username is not None and terminal_id is not None and mqtt.username != terminal_id:
            raise ValueError(f"mqtt.username must equal terminal_id ({terminal_id!r}); the broker's ACL is keyed by it")
        return mqtt


def load_terminal_config(path: Path | str) -> TerminalConfig:
    """Load and validate a terminal config file."""
    return load_config(TerminalConfig, path)
