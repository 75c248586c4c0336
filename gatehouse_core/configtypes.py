"""Field types shared by the config models of every Gatehouse program."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo

from gatehouse_core.configfile import StrictModel


def _resolve(value: Path, info: ValidationInfo) -> Path:
    # Relative paths are relative to the config file, not to wherever the program was started.
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
Port = Annotated[int, Field(ge=1, le=65535)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class MqttConfig(StrictModel):
    """How a program reaches its site's MQTT broker."""

    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: Port = Field(1883, description="Broker port (8883 is usual with TLS).")
    username: str | None = Field(None, description="Broker username; each terminal has its own.")
    password_file: ConfigPath | None = Field(None, description="File holding the broker password (mode 0600).")
    tls: bool = Field(False, description="Connect with TLS. Required in production deployments.")
    ca_file: ConfigPath | None = Field(None, description="CA certificate that signed the broker's certificate.")
    keepalive: int = Field(30, ge=5, le=3600, description="Seconds between MQTT keep-alive pings.")

    def read_password(self) -> str | None:
        """The broker password, read from `password_file`."""
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()
