"""Configuration: URL normalisation and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.core.config import load_settings, normalise_database_url
from herald.core.errors import ConfigError
from herald.core.maturity import MaturityLevel


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("postgres://user:pw@host:5433/db", "postgresql+asyncpg://user:pw@host:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/herald.db", "sqlite+aiosqlite:///var/herald.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
    ],
)
def test_plain_urls_map_to_async_drivers(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"database_url": "mysql://x/y"}, "HERALD_DATABASE_URL"),
        ({"database_url": "not a url"}, "HERALD_DATABASE_URL"),
        ({"env": "staging"}, "HERALD_ENV"),
        ({"max_attempts": 0}, "HERALD_MAX_ATTEMPTS"),
        ({"log_level": "LOUD"}, "HERALD_LOG_LEVEL"),
        ({"env": "production"}, "HERALD_SECRET_KEY"),
        ({"secret_key": "short"}, "HERALD_SECRET_KEY"),
        ({"dev_agent_level": "GURU"}, "HERALD_DEV_AGENT_LEVEL"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(
    overrides: dict[str, object], named: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(data_dir=tmp_path, **overrides)


def test_development_keeps_a_generated_secret_across_starts(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path)
    second = load_settings(data_dir=tmp_path)
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert first.secret_key not in repr(first)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERALD_DATABASE_URL", "postgresql://herald@db/herald")
    monkeypatch.setenv("HERALD_MAX_ATTEMPTS", "7")
    settings = load_settings(data_dir=tmp_path)
    assert settings.async_database_url == "postgresql+asyncpg://herald@db/herald"
    assert settings.max_attempts == 7


def test_dev_agent_level_defaults_to_supervised_and_reads_any_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_settings(data_dir=tmp_path).dev_agent_level is MaturityLevel.SUPERVISED
    monkeypatch.setenv("HERALD_DEV_AGENT_LEVEL", "intern")
    assert load_settings(data_dir=tmp_path).dev_agent_level is MaturityLevel.INTERN
