"""The mobile API's config file (TOML), validated; see config/mobile_api.example.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from gatehouse_core.configfile import StrictModel, load_config
from gatehouse_core.configtypes import ConfigPath, LogLevel
from server.config import DatabaseUrl, FaceServerConfig, HttpConfig

# A phone's front camera takes at most about 12 MP; more is no better for a face and costs memory to decode.
SELFIE_MAX_PIXELS = 12_000_000


class TokenConfig(StrictModel):
    """How long the app's tokens last."""

    access_minutes: int = Field(10, ge=1, le=60, description="Life of an access token, in minutes.")
    refresh_days: int = Field(30, ge=1, le=365, description="A device unused for this many days must sign in again.")
    session_max_days: int = Field(
        180, ge=1, le=730, description="Every device signs in again after this many days, however often it is used."
    )
    max_devices: int = Field(
        10, ge=1, le=50, description="Devices one resident may have signed in; a new one signs the oldest out."
    )


def _limit_text(value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise ValueError("write limits like '120/minute' or '20/minute;200/hour'") from None
    return value


class RateLimitConfig(StrictModel):
    """Request limits per signed-in device (or per address before sign-in), through Flask-Limiter."""

    enabled: bool = Field(True, description="Switch the limits off only for load tests.")
    storage_uri: str = Field(
        "memory://",
        description="Where counters live: memory:// for one process; redis://HOST:6379 when several instances "
        "serve the API.",
    )
    default: str = Field("120/minute", description="Limit on every request.")
    sign_in: str = Field("20/minute;200/hour", description="Limit on sign-in, code and refresh requests per address.")
    passes: str = Field("30/hour", description="Limit on creating visitor passes, per device.")
    photos: str = Field(
        "10/hour", description="Limit on selfie uploads for face enrollment, per resident (all their devices)."
    )

    @field_validator("default", "sign_in", "passes", "photos")
    @classmethod
    def _limits(cls, value: str) -> str:
        return _limit_text(value)

    @field_validator("storage_uri")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+sentinel://", "redis+cluster://")):
            raise ValueError("use memory:// or a redis:// address")
        return value


class LoginCodeConfig(StrictModel):
    """How one-time sign-in codes reach residents' phones."""

    sender: Literal["spool", "command", "plugin"] = Field(
        description="spool: write each message to a file in spool_dir (development, or a gateway that reads the "
        "folder); command: run a program with the phone as argument and the text on stdin; plugin: call "
        "'module:factory' from your own package."
    )
    spool_dir: ConfigPath | None = Field(None, description="Folder for the spool sender.")
    command: list[str] | None = Field(
        None, description="Program and arguments for the command sender; '{phone}' is replaced by the number."
    )
    plugin: str | None = Field(None, description="'package.module:factory' returning a sender, for the plugin sender.")
    options: dict[str, str] = Field(default_factory=dict, description="Settings handed to the plugin's factory.")
    timeout_seconds: int = Field(10, ge=1, le=60, description="How long the command sender may take.")

    @model_validator(mode="after")
    def _needs_its_setting(self) -> LoginCodeConfig:
        needed = {
            "spool": ("spool_dir", self.spool_dir),
            "command": ("command", self.command),
            "plugin": ("plugin", self.plugin),
        }
        name, value = needed[self.sender]
        if not value:
            raise ValueError(f"the {self.sender} sender needs login_codes.{name}")
        if self.sender == "plugin" and (self.plugin is None or ":" not in self.plugin):
            raise ValueError("write login_codes.plugin as 'package.module:factory'")
        return self


class MobileApiConfig(StrictModel):
    """Settings of `gatehouse mobile-api run`."""

    mode: Literal["production", "development"] = Field("production", description="As for the server.")
    database_url: DatabaseUrl = Field(description="The same database the server uses.")
    key_dir: ConfigPath = Field(description="The server's key directory (signing, credential and template keys).")
    log_level: LogLevel = Field("INFO", description="Log verbosity.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="Where the API listens.")  # type: ignore[arg-type]
    public_base_url: AnyHttpUrl | None = Field(
        None,
        description="The address residents and visitors reach this API at (https://...), used in share links; "
        "without it, links use the address of the request.",
    )
    trusted_proxies: int = Field(
        0, ge=0, le=5, description="Reverse proxies in front of the API whose X-Forwarded-* headers are believed."
    )
    selfie_max_pixels: int = Field(
        SELFIE_MAX_PIXELS,
        ge=1_000_000,
        le=40_000_000,
        description="Most pixels a selfie from the app may declare; larger ones are refused before anything is "
        "decoded. The lower of this and face.max_photo_pixels applies.",
    )
    tokens: TokenConfig = Field(default_factory=TokenConfig, description="Token lifetimes.")  # type: ignore[arg-type]
    rate_limits: RateLimitConfig = Field(
        default_factory=RateLimitConfig,  # type: ignore[arg-type]
        description="Request limits.",
    )
    login_codes: LoginCodeConfig | None = Field(
        None, description="Sign-in by one-time code; without this section residents sign in with a password only."
    )
    face: FaceServerConfig | None = Field(
        None,
        description="Face engine for selfie enrollment at sites that allow it; without it the app cannot enroll "
        "faces (consent and withdrawal still work).",
    )


def load_mobile_api_config(path: Path | str) -> MobileApiConfig:
    """Load and validate a mobile API config file."""
    return load_config(MobileApiConfig, path)
