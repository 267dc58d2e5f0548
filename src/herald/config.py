"""Settings from ``HERALD_*`` environment variables, validated once at start-up.

Production refuses to start without a real secret key; development generates one under ``./var/`` so that
``make run`` works on a fresh machine.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///./var/herald.db"
_MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def normalise_database_url(url: str) -> str:
    """Map the plain URLs users write to the async drivers Herald uses (asyncpg, aiosqlite)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("must be a URL such as postgresql://user@host/db or sqlite:///path/to/file.db")
    base = scheme.split("+", 1)[0].lower()
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError(f"unsupported database scheme {scheme!r}: use postgresql:// or sqlite://")


class Settings(BaseSettings):
    """Every knob Herald reads. Field names map to ``HERALD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HERALD_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = Field(default="", repr=False)
    data_dir: Path = Path("./var")

    worker_batch_size: int = Field(default=200, ge=1, le=5000)
    # At least twice the batch, so the next batch is claimed while the previous one is being sent.
    worker_concurrency: int = Field(default=400, ge=1, le=10_000)
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_seconds: float = Field(default=2.0, ge=0, le=3600)
    retry_max_seconds: float = Field(default=3600.0, ge=0, le=86_400 * 7)
    approval_ttl_seconds: int = Field(default=86_400, ge=60)
    send_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    metrics_token: str = Field(default="", repr=False)
    public_url: str = ""  # where providers reach this Herald (signed callbacks name it); empty: as requested
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        normalise_database_url(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        if self.env is Environment.PRODUCTION and len(self.secret_key) < _MIN_SECRET_LENGTH:
            raise ValueError(
                f"HERALD_SECRET_KEY must be set to at least {_MIN_SECRET_LENGTH} random characters in production"
            )
        if self.secret_key and len(self.secret_key) < _MIN_SECRET_LENGTH:
            raise ValueError(f"HERALD_SECRET_KEY must be at least {_MIN_SECRET_LENGTH} characters long")
        return self

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def async_database_url(self) -> str:
        return normalise_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        name = "HERALD_" + loc[0].upper() if loc else "settings"
        msg = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"  {name}: {msg}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; in development, create the data folder and a persistent secret key."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    if settings.is_development and not settings.secret_key:
        settings = settings.model_copy(update={"secret_key": _dev_secret(settings.data_dir)})
    return settings


def _dev_secret(data_dir: Path) -> str:
    """A per-checkout random key, kept in ``var/secret.key`` so encrypted credentials survive restarts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key
