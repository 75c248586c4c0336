"""A terminal's config file (TOML), validated; see config/terminal.example.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from gatehouse_core.configfile import StrictModel, load_config
from gatehouse_core.configtypes import ConfigPath, LogLevel, MqttConfig
from gatehouse_core.wire.topics import TopicError, check_ident


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
    log_level: LogLevel = Field("INFO", description="Log verbosity.")
    mqtt: MqttConfig = Field(description="The site's broker.")

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
