"""MkDocs hook: the reference pages that must never drift from the code are generated from it at build time.

- ``reference/configuration.md`` from :class:`herald.core.config.Settings` (every field, its variable, its
  default); a field without a meaning (a ``Field(description=...)`` or an entry in ``MEANINGS``) stops the build,
  and so does a meaning for a field that no longer exists.
- ``reference/providers.md`` from the provider registry: platforms, credentials fields, length, published
  limits, and whether the provider has an inbound webhook or delivery receipts.
- ``reference/api.md`` and ``openapi.json`` from the app's own ``/openapi.json`` (built with ``create_app``, which
  opens no database, so the build works offline).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

# What each setting means, for fields that carry no ``description`` in config.py; (shown default, meaning).
# A shown default of None prints the field's real default.
MEANINGS: dict[str, tuple[str | None, str]] = {
    "env": (
        None,
        "`development` (dev inbox fallback, generated secret key, example tenant and agents) or `production`",
    ),
    "database_url": (
        None,
        "`postgresql://user@host/db` or `sqlite:///path`; the async driver (asyncpg, aiosqlite) is Herald's business",
    ),
    "secret_key": (
        "generated into `var/secret.key` in development",
        "at least 32 characters; required in production; encrypts channel credentials and derives OTP codes",
    ),
    "data_dir": (None, "where development keeps its generated files (`secret.key`, `dev-api-key`)"),
    "worker_batch_size": (None, "messages claimed per batch"),
    "worker_concurrency": (None, "messages in flight per worker process (keep it at least twice the batch)"),
    "poll_interval_seconds": (None, "idle poll when no NOTIFY arrives"),
    "lease_seconds": (
        None,
        "how long a claimed message is held before another worker may take it (extended while its outcome "
        "waits for the database)",
    ),
    "max_attempts": (None, "attempts before a message is `failed`"),
    "retry_base_seconds": (None, "exponential backoff with jitter: the first delay"),
    "retry_max_seconds": (None, "exponential backoff with jitter: the cap"),
    "approval_ttl_seconds": (None, "how long an INTERN's message waits for approval"),
    "send_timeout_seconds": (None, "one provider call's time limit"),
    "metrics_token": (None, "when set, `/metrics` needs `Authorization: Bearer <token>`"),
    "public_url": (
        None,
        "the URL providers use to reach Herald (Twilio signs the URL it called; email approval links name it); "
        "empty: as requested",
    ),
    "log_level": (None, "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    "otp_retention_hours": (
        None,
        "how long after expiry OTP verifications are kept before the retention job deletes them",
    ),
    "conversation_context_size": (None, "recent interactions an agent receives with each inbound message"),
    "conversation_idle_seconds": (None, "silence after which a conversation's session starts again"),
    "outbound_guard": (
        "on in production, off in development",
        "`true`/`false`: refuse outgoing URLs (agent callbacks, event subscriptions, webhook channels and "
        "`base_url`s, HTTP monitors, SMTP hosts) whose host resolves to a loopback, link-local, private or other "
        "non-public address, when saved (422) and on every request and redirect",
    ),
    "outbound_allow": (
        "empty",
        "comma-separated CIDRs (`10.0.0.0/8`, `127.0.0.1`) and host names (`gateway.internal`, "
        "`*.corp.example`) the guard lets through",
    ),
}


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def configuration_page() -> str:
    """Every Settings field as a row: variable, type, default, meaning; refuses undocumented or stale entries."""
    from herald.core.config import Settings

    fields = Settings.model_fields
    prefix = str(Settings.model_config.get("env_prefix", "HERALD_"))
    stale = sorted(set(MEANINGS) - set(fields))
    missing = sorted(name for name, field in fields.items() if not field.description and name not in MEANINGS)
    if stale or missing:
        raise PluginError(
            f"configuration reference: undocumented settings {missing}, stale entries {stale}: give each setting "
            "a Field(description=...) in herald/core/config.py or an entry in MEANINGS (docs/hooks/generate.py)"
        )
    rows = []
    for name, field in fields.items():
        shown, meaning = MEANINGS.get(name, (None, field.description or ""))
        if shown is None:
            default = field.get_default(call_default_factory=True)
            shown = (
                f"`{default.value if hasattr(default, 'value') else default}`"
                if default not in ("", [])
                else "empty"
            )
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        rows.append(
            f"| `{prefix}{name.upper()}` | {cell(kind)} | {cell(shown)} | {cell(field.description or meaning)} |"
        )
    return "\n".join(
        [
            "# Configuration reference",
            "",
            "Herald reads its settings once at start-up from `HERALD_*` environment variables "
            "(`herald.core.config.Settings`). This page is generated from that class when the documentation is "
            "built, so it lists every setting there is. Bad values stop Herald at start with one line per "
            "variable saying what is wrong.",
            "",
            "| variable | type | default | meaning |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def providers_page() -> str:
    """One section per registered provider, from its adapter class and registry entry."""
    from herald.providers import REGISTRY

    out = [
        "# Providers reference",
        "",
        "Generated from the provider registry (`herald.providers.REGISTRY`) when the documentation is built. "
        "Credentials are given as `credentials` when a channel is created (`POST /api/v1/channels`); unknown "
        "fields are refused, and secret fields are write-only (never returned or logged). See the "
        "[channels guide](../guides/channels.md) for webhook URLs and examples. Published limits are the "
        "provider's own, per Herald channel and per recipient; a channel's `rate_per_second` and "
        "`recipient_rate_per_second` override them.",
        "",
        "| provider | platforms | length | published limits | inbound webhook | delivery receipts |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    sections = []
    for name in REGISTRY.names():
        provider = REGISTRY.get(name)
        assert provider is not None
        adapter = provider.adapter
        platforms = ", ".join(sorted(adapter.platforms)).replace("*", "any")
        length = "" if adapter.max_length is None else f"{adapter.max_length:,}"
        if length and adapter.split_long:
            length += ", split"
        if adapter.parts_per_call > 1:
            length += f" ({adapter.parts_per_call} parts per request)"
        limits = []
        if adapter.rate_per_second:
            limits.append(f"{adapter.rate_per_second:g}/s per channel")
        if adapter.recipient_rate_per_second:
            limits.append(f"{adapter.recipient_rate_per_second:.3g}/s per recipient")
        if limits and adapter.burst > 1:
            limits.append(f"burst {adapter.burst:g}")
        out.append(
            f"| `{name}` | {platforms} | {length} | {', '.join(limits)} | {'yes' if provider.inbound else ''} "
            f"| {'yes' if provider.receipts else ''} |"
        )
        sections += [f"## `{name}`", ""]
        doc = (adapter.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            sections += [" ".join(doc.split()), ""]
        if adapter.requires_base_url:
            sections += ["Needs the channel's `base_url` (a self-hosted API).", ""]
        fields = adapter.credentials_model.model_fields
        if not fields:
            sections += ["No credentials.", ""]
            continue
        sections += [
            "| credential | required | secret | default | notes |",
            "| --- | --- | --- | --- | --- |",
        ]
        for field_name, field in fields.items():
            default = "" if field.is_required() or field.default is None else f"`{field.default}`"
            sections.append(
                f"| `{field_name}` | {'yes' if field.is_required() else ''} | {'' if field.repr else 'yes'} "
                f"| {cell(default)} | {cell(field.description or '')} |"
            )
        sections.append("")
    return "\n".join([*out, "", *sections])


def openapi_spec() -> dict[str, Any]:
    """The app's own specification, as ``GET /openapi.json`` serves it; building the app opens no database."""
    from herald.core.config import Settings
    from herald.web.api.app import create_app

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            database_url=f"sqlite:///{scratch}/unused.db", data_dir=Path(scratch), secret_key="d" * 40
        )
        spec: dict[str, Any] = create_app(settings, run_worker=False).openapi()
    return spec


def schema_type(schema: dict[str, Any]) -> str:
    """A short human form of a JSON schema: a linked component name, ``list of X``, ``X or null``, an enum."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(schema_type(item) for item in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {schema_type(schema.get('items', {}))}"
    if (
        kind == "object"
        and "additionalProperties" in schema
        and isinstance(schema["additionalProperties"], dict)
    ):
        return f"map of {schema_type(schema['additionalProperties'])}"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def anchor(name: str) -> str:
    return "schema-" + "".join(ch.lower() if ch.isalnum() else "-" for ch in name)


def body_schema(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    return "; ".join(f"{schema_type(media.get('schema', {}))} (`{kind}`)" for kind, media in content.items())


def operation_section(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """One operation: summary, description, security, parameters, request body and answers."""
    out = [f"### `{method} {path}`", ""]
    if operation.get("summary"):
        out += [f"**{operation['summary']}.**", ""]
    if operation.get("description"):
        out += [operation["description"].strip(), ""]
    if "security" in operation:
        schemes = sorted({name for requirement in operation["security"] for name in requirement})
        out += [f"Authentication: {', '.join(f'`{name}`' for name in schemes) or 'none'}", ""]
    params = operation.get("parameters", [])
    if params:
        out += ["| parameter | in | required | type | description |", "| --- | --- | --- | --- | --- |"]
        out += [
            f"| `{param['name']}` | {param['in']} | {'yes' if param.get('required') else ''} "
            f"| {cell(schema_type(param.get('schema', {})))} | {cell(param.get('description', ''))} |"
            for param in params
        ]
        out.append("")
    body = operation.get("requestBody")
    if body:
        out += [f"Request body: {body_schema(body.get('content'))}", ""]
    out += ["| status | meaning | body |", "| --- | --- | --- |"]
    out += [
        f"| {status} | {cell(response.get('description', ''))} | {cell(body_schema(response.get('content')))} |"
        for status, response in operation.get("responses", {}).items()
    ]
    return [*out, ""]


def schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    """One component schema: its description and a table of its properties (or its type)."""
    out = [f"### {name} {{ #{anchor(name)} }}", ""]
    if schema.get("description"):
        out += [" ".join(schema["description"].split()), ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        out += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        out += [
            f"| `{prop}` | {cell(schema_type(sub))} | {'yes' if prop in required else ''} "
            f"| {cell(sub.get('description', ''))} |"
            for prop, sub in properties.items()
        ]
        out.append("")
    elif "enum" in schema or "type" in schema:
        out += [f"Type: {schema_type(schema)}", ""]
    return out


def api_page(spec: dict[str, Any]) -> str:
    """Every operation grouped by tag, then every component schema with its properties."""
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and method != "parameters":
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    info = spec.get("info", {})
    out = [
        "# API reference",
        "",
        f"Generated from Herald's own specification ({info.get('title', 'Herald')} {info.get('version', '')}, "
        f"OpenAPI {spec.get('openapi', '')}) when the documentation is built. A running Herald serves the same "
        "document at `/openapi.json` and an interactive view at `/docs`; the file is also "
        "[here](../openapi.json).",
        "",
        "Every call needs `Authorization: Bearer <key>` except `/health`, `/metrics` and the provider callbacks "
        "(those check the provider's own signature).",
        "",
    ]
    for tag in sorted(by_tag):
        out += [f"## {tag.capitalize()}", ""]
        for method, path, operation in by_tag[tag]:
            out += operation_section(method, path, operation)
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out += ["## Schemas", ""]
        for name in sorted(schemas):
            out += schema_section(name, schemas[name])
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages (and the specification itself) to the build."""
    spec = openapi_spec()
    generated = {
        "reference/configuration.md": configuration_page(),
        "reference/providers.md": providers_page(),
        "reference/api.md": api_page(spec),
        "openapi.json": json.dumps(spec, indent=2),
    }
    for path, content in generated.items():
        files.append(File.generated(config, path, content=content))
    return files
