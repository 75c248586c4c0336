"""The server's config file (TOML), validated; see config/server.example.toml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field

from gatehouse_core.configfile import StrictModel, load_config
from gatehouse_core.configtypes import ConfigPath, LogLevel, MqttConfig, Port
from gatehouse_core.face.config import FaceEngineConfig

if TYPE_CHECKING:  # the photo gates need OpenCV and Pillow, which the phone-app API installs without
    from gatehouse_core.face.enroll import PhotoLimits
    from gatehouse_core.face.quality import QualityLimits


def _database_url(value: str) -> str:
    if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
        raise ValueError("use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB")
    if value.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; the bare scheme would ask SQLAlchemy for psycopg2.
        value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
    return value


DatabaseUrl = Annotated[str, AfterValidator(_database_url)]


class FaceServerConfig(FaceEngineConfig):
    """The face engine (the same one the terminals run) plus the limits an enrollment photo must meet."""

    max_photo_bytes: int = Field(
        10_000_000,
        ge=10_000,
        le=16_000_000,
        description="Largest photo file accepted, in bytes (at most 16 MB, the console's request limit).",
    )
    max_photo_pixels: int = Field(
        40_000_000,
        ge=10_000,
        le=80_000_000,
        description="Most pixels a photo may declare; larger ones are refused before anything is decoded.",
    )
    min_face_px: float = Field(
        64, ge=32, le=4000, description="Least size of the face (shorter side of its box), in pixels of the photo."
    )
    min_sharpness: float = Field(
        25,
        ge=0,
        le=10_000,
        description="Least sharpness (variance of the Laplacian of the aligned 112x112 face); lower is blurry.",
    )
    max_yaw_deg: float = Field(35, gt=0, le=90, description="Most the head may be turned left or right, in degrees.")
    max_pitch_deg: float = Field(30, gt=0, le=90, description="Most the head may be tilted up or down, in degrees.")

    def quality_limits(self) -> QualityLimits:
        """The enrollment gates' thresholds."""
        from gatehouse_core.face.quality import QualityLimits

        return QualityLimits(
            min_face_px=self.min_face_px,
            min_sharpness=self.min_sharpness,
            max_yaw_deg=self.max_yaw_deg,
            max_pitch_deg=self.max_pitch_deg,
        )

    def photo_limits(self) -> PhotoLimits:
        """What a photo may be before it is decoded."""
        from gatehouse_core.face.enroll import PhotoLimits

        return PhotoLimits(max_bytes=self.max_photo_bytes, max_pixels=self.max_photo_pixels)


class HttpConfig(StrictModel):
    """Where the console listens."""

    host: str = Field("127.0.0.1", description="Address to bind; keep the console on the site LAN.")
    port: Port = Field(8080, description="TCP port of the console.")
    threads: int = Field(8, ge=1, le=64, description="Request threads of the WSGI server.")


class SyncConfig(StrictModel):
    """How the worker publishes the journal to terminals."""

    poll_interval_ms: int = Field(
        50, ge=10, le=5000, description="How often the worker looks for new journal entries to publish."
    )
    journal_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Published journal entries older than this are pruned; a terminal offline for longer "
        "gets a full snapshot when it returns.",
    )


class RetentionConfig(StrictModel):
    """When the worker applies each site's retention settings and checks for overdue erasures."""

    interval_minutes: int = Field(
        60,
        ge=5,
        le=1440,
        description="How often the worker deletes access events, visitor passes and unused face templates "
        "past their site's retention periods (the periods themselves are per-site settings).",
    )
    alarm_check_minutes: int = Field(
        15,
        ge=1,
        le=1440,
        description="How often the worker looks for face-template erasures a terminal has not confirmed within "
        "its site's deadline, and raises (or resolves) alarms for them.",
    )
    chunk_rows: int = Field(
        20_000,
        ge=100,
        le=100_000,
        description="Access events deleted per transaction, so a large purge never holds one long transaction "
        "(on SQLite each chunk holds the write lock; larger chunks purge faster).",
    )


class ServerConfig(StrictModel):
    """Settings of `gatehouse server run` and `gatehouse server worker`."""

    mode: Literal["production", "development"] = Field(
        "production",
        description="production refuses to start without keys and an admin, and sends cookies over HTTPS only.",
    )
    database_url: DatabaseUrl = Field(
        description="SQLAlchemy URL: sqlite:///path/to.db or postgresql+psycopg://user@host/dbname."
    )
    key_dir: ConfigPath = Field(description="Directory made by `gatehouse keys init` (never inside the database).")
    log_level: LogLevel = Field("INFO", description="Log verbosity.")
    trusted_proxies: int = Field(
        0,
        ge=0,
        le=5,
        description="Reverse proxies in front of the console whose X-Forwarded-* headers are believed, so sign-in "
        "limits count each browser's own address; 0 when browsers connect directly.",
    )
    http: HttpConfig = Field(default_factory=HttpConfig, description="Console web server.")  # type: ignore[arg-type]
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Broker used by the worker.")  # type: ignore[arg-type]
    sync: SyncConfig = Field(default_factory=SyncConfig, description="Terminal sync.")  # type: ignore[arg-type]
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,  # type: ignore[arg-type]
        description="Retention runs and erasure alarms in the worker.",
    )
    face: FaceServerConfig | None = Field(
        None,
        description="Face engine for enrolling face photos; without this section the server enrolls no faces "
        "(cards, ID documents and codes work as before).",
    )


def load_server_config(path: Path | str) -> ServerConfig:
    """Load and validate a server config file."""
    return load_config(ServerConfig, path)
