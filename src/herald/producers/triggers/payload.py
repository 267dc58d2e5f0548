"""Task templates over webhook payloads: ``{pr_number}`` (seed 002), ``{{pr_number}}`` and nested
``{pull_request.title}``. Deliberately not Jinja: only field lookups, so a payload cannot run anything, and a
missing field is an error naming it rather than a silent blank."""

from __future__ import annotations

import re
from typing import Any

from herald.core.errors import HeraldError

_FIELD = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}|\{([A-Za-z_][\w.\-]*)\}")


class MissingField(HeraldError, ValueError):
    """The template names a field the payload does not have."""


def lookup(payload: Any, path: str) -> Any:
    value = payload
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise MissingField(f"the payload has no field {path!r}")
    return value


def render(template: str, payload: Any) -> str:
    def field(match: re.Match[str]) -> str:
        value = lookup(payload, match.group(1) or match.group(2))
        return value if isinstance(value, str) else str(value)

    return _FIELD.sub(field, template)


def fields(template: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _FIELD.finditer(template)]


def flatten_github(payload: dict[str, Any]) -> dict[str, Any]:
    """GitHub payloads keep the PR under ``pull_request``; add seed 002's flat names (``pr_number``, ...)."""
    pr = payload.get("pull_request")
    extra: dict[str, Any] = {}
    if isinstance(pr, dict):
        extra = {"pr_number": pr.get("number", payload.get("number")), "pr_title": pr.get("title"),
                 "pr_url": pr.get("html_url"), "pr_author": (pr.get("user") or {}).get("login")}  # fmt: skip
    repository = payload.get("repository")
    if isinstance(repository, dict):
        extra["repository_name"] = repository.get("full_name")
    return {**{k: v for k, v in extra.items() if v is not None}, **payload}
