"""Settings from ``HERALD_*`` environment variables, validated once at start-up.

Production refuses to start without a real secret key; development generates one under ``./var/`` so that
``make run`` works on a fresh machine.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from herald.core.errors import ConfigError
from herald.core.maturity import MaturityLevel

DEFAULT_DATABASE_URL = "sqlite:///./var/herald.db"
_MIN_SECRET_LENGTH = 32
# A DNS name, optionally "*." for every name below it (HERALD_OUTBOUND_ALLOW).
_HOST_NAME = re.compile(
    r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


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
    attachments_max_count: int = Field(
        default=10, ge=1, le=100, description="how many attachments one email message may carry (more: a 422)"
    )
    attachments_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        le=40 * 1024 * 1024,
        description="the most bytes (decoded) one email message's attachments may add up to (more: a 422); "
        "10 MiB by default, 40 MiB at most (Resend's own limit)",
    )
    send_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="PostgreSQL connections each process keeps open for reuse (as many again may open for a "
        "burst, then close). Below the requests a process serves at once, connections are opened and closed "
        "per request, which costs more than the request; mind the server's max_connections across processes",
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description="the event loop of `herald serve`, `api`, `worker` and `scheduler`: `uvloop` (libuv, faster "
        "sockets and callbacks), `asyncio` (the standard library's), or `auto`: uvloop where it is installed "
        "(it is, with Herald, except on Windows)",
    )
    metrics_token: str = Field(default="", repr=False)
    public_url: str = ""  # where providers reach this Herald (signed callbacks name it); empty: as requested
    log_level: str = "INFO"
    # Finished or expired OTP verifications are deleted this long after they expire (herald.admin.retention).
    otp_retention_hours: float = Field(default=24.0, ge=0, le=24 * 365)
    # Conversations: how many recent interactions an agent sees, and the idle time that starts a new session.
    conversation_context_size: int = Field(default=3, ge=0, le=100)
    conversation_idle_seconds: int = Field(default=86_400, ge=60)
    # Outgoing URLs (callbacks, subscriptions, webhooks, HTTP monitors, SMTP) may not reach loopback, private or
    # link-local addresses unless allowed here; None: the guard is on in production, off in development.
    outbound_guard: bool | None = None
    outbound_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)  # CIDRs and host names
    data_source_sqlite_dir: Path | None = Field(
        default=None,
        description="SQLite data sources (a tenant's own database as a file) must lie under this directory. "
        "Unset: any file is accepted in development and SQLite data sources are refused in production, so an "
        "API key cannot read files on Herald's host. Herald's own database file is always refused.",
    )
    data_source_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="The longest a query on a tenant's data source may run (statement timeout) unless the "
        "caller asks for less.",
    )
    data_source_row_cap: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="The most rows a query on a tenant's data source returns unless the caller asks for fewer; "
        "more are reported as truncated.",
    )
    # Development only: an agent a request names that is not registered yet is registered at this level (and
    # audited as agent.auto_registered), so examples run as written; production answers 422 instead.
    dev_agent_level: MaturityLevel = Field(
        default=MaturityLevel.SUPERVISED,
        description="Development only: the maturity level (STUDENT, INTERN, SUPERVISED, AUTONOMOUS) at which an "
        "agent a request names but nobody registered is registered on first use, audited as "
        "agent.auto_registered. Production answers 422 instead.",
    )

    suggestion_dismiss_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="How long a dismissed suggestion (herald.learning.suggestions) stays dismissed: the same "
        "suggestion is not made again for this many days unless a dismissal names its own for_days.",
    )
    suggestion_refresh_seconds: int = Field(
        default=3600,
        ge=60,
        le=86_400 * 7,
        description="How often the scheduler recomputes each tenant's suggestions from its patterns.",
    )

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

    @field_validator("dev_agent_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _split_outbound_allow(cls, value: Any) -> Any:
        return value.split(",") if isinstance(value, str) else value

    @field_validator("outbound_allow")
    @classmethod
    def _check_outbound_allow(cls, value: list[str]) -> list[str]:
        entries, problems = [], []
        for raw in (item.strip() for item in value):
            if not raw:
                continue
            try:
                entries.append(_allow_entry(raw))
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return entries

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
    def outbound_guard_active(self) -> bool:
        """On when asked for; by default in production only, since development talks to loopback fakes."""
        return self.outbound_guard if self.outbound_guard is not None else not self.is_development

    @property
    def async_database_url(self) -> str:
        return normalise_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")


def _allow_entry(raw: str) -> str:
    """One HERALD_OUTBOUND_ALLOW entry, normalised: a CIDR (a bare address is a /32 or /128) or a host name."""
    entry = raw.lower().rstrip(".")
    if "%" in entry:
        raise ValueError(f"{raw!r}: zone indexes (%...) are not supported")
    try:
        return str(ipaddress.ip_network(entry))
    except ValueError as exc:
        if "/" in entry or ":" in entry or re.fullmatch(r"[\d.]+", entry):
            raise ValueError(f"{raw!r} is not a valid CIDR: {exc}") from None
    if not _HOST_NAME.fullmatch(entry):
        raise ValueError(f"{raw!r} is neither a CIDR (10.0.0.0/8) nor a host name")
    return entry


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
