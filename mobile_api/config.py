"""The mobile API's config file (TOML), validated; see config/mobile_api.example.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gatehouse_core.configfile import StrictModel, load_config
from gatehouse_core.configtypes import ConfigPath, LogLevel
from server.config import DatabaseUrl, HttpConfig


class MobileApiConfig(StrictModel):
    """Settings of `gatehouse mobile-api run`."""

    mode: Literal["production", "development"] = Field("production", description="As for the server.")
    database_url: DatabaseUrl = Field(description="The same database the server uses.")
    key_dir: ConfigPath = Field(description="The server's key directory (for credential hashing).")
    log_level: LogLevel = Field("INFO", description="Log verbosity.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="Where the API listens.")  # type: ignore[arg-type]


def load_mobile_api_config(path: Path | str) -> MobileApiConfig:
    """Load and validate a mobile API config file."""
    return load_config(MobileApiConfig, path)
