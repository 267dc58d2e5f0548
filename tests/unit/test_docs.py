"""The documentation builds in strict mode, and the pages generated from the code cannot drift from it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from mkdocs.exceptions import PluginError

from herald.admin.channels import DEFAULT_PROVIDER
from herald.core.config import Settings
from herald.providers import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("herald_docs_hook", ROOT / "docs" / "hooks" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


def test_mkdocs_builds_in_strict_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        check=False,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    for page in ("reference/api", "reference/configuration", "reference/providers", "guides/channels"):
        assert (site / page / "index.html").is_file(), page
    served = json.loads((site / "openapi.json").read_text())
    assert "/api/v1/messaging/proactive/send" in served["paths"]


def test_configuration_page_lists_every_setting_with_its_variable() -> None:
    page = hook.configuration_page()
    for name in Settings.model_fields:
        assert f"| `HERALD_{name.upper()}` |" in page


def test_a_setting_without_a_meaning_stops_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(hook.MEANINGS, "lease_seconds")
    with pytest.raises(PluginError, match="lease_seconds"):
        hook.configuration_page()


def test_a_meaning_for_a_setting_that_is_gone_stops_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(hook.MEANINGS, "no_such_setting", (None, "stale"))
    with pytest.raises(PluginError, match="no_such_setting"):
        hook.configuration_page()


def test_providers_page_has_every_provider_and_credential() -> None:
    page = hook.providers_page()
    for name in REGISTRY.names():
        provider = REGISTRY.get(name)
        assert provider is not None
        assert f"## `{name}`" in page
        for field in provider.adapter.credentials_model.model_fields:
            assert f"| `{field}` |" in page


def test_api_page_has_every_operation() -> None:
    spec = hook.openapi_spec()
    page = hook.api_page(spec)
    for path, operations in spec["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in page


def test_channel_guide_credentials_pass_the_providers_validators() -> None:
    """Every example channel in the guide (its JSON block) has credentials its provider accepts as written."""
    text = (ROOT / "docs" / "guides" / "channels.md").read_text()
    decoder = json.JSONDecoder()
    checked = set()
    for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL):
        index = 0
        while block[index:].strip():
            index += len(block[index:]) - len(block[index:].lstrip())
            example, index = decoder.raw_decode(block, index)
            name = example.get("provider") or DEFAULT_PROVIDER[example["platform"]]
            provider = REGISTRY.get(name)
            assert provider is not None, name
            provider.adapter.credentials_model.model_validate(example["credentials"])
            checked.add(name)
    assert len(checked) >= 8


def test_commands_page_names_every_command() -> None:
    from herald.cli import main

    page = (ROOT / "docs" / "reference" / "commands.md").read_text()
    for name in main.commands:
        assert f"`herald {name}" in page, name
