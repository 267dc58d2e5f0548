"""Message templates: ``{{variable}}`` in a sandboxed Jinja2 environment.

Templates are checked when a message is accepted: a syntax error or a variable nobody supplies is a 422 then,
not a failure at send time. Content without template syntax skips Jinja entirely (the common, fast case).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from herald.errors import ValidationFailed

BUILTIN_VARIABLES = frozenset({"date", "time", "datetime", "timezone"})

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def has_template_syntax(source: str) -> bool:
    return "{{" in source or "{%" in source or "{#" in source


def builtin_variables(now: datetime, timezone: str) -> dict[str, str]:
    """``date``, ``time``, ``datetime`` and ``timezone`` for ``now`` seen in ``timezone``."""
    local = now.astimezone(ZoneInfo(timezone))
    return {
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M:%S"),
        "datetime": local.isoformat(timespec="seconds"),
        "timezone": timezone,
    }


@lru_cache(maxsize=1024)
def _compile(source: str) -> tuple[Any, frozenset[str]]:
    ast = _env.parse(source)
    return _env.from_string(ast), frozenset(meta.find_undeclared_variables(ast))


def validate(source: str, variables: dict[str, Any], *, field: str) -> None:
    """Raise a 422 naming ``field`` if the template does not parse or uses an unsupplied variable."""
    if not has_template_syntax(source):
        return
    try:
        _, names = _compile(source)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(
            f"template syntax error on line {exc.lineno}: {exc.message}", field=field
        ) from exc
    missing = sorted(names - BUILTIN_VARIABLES - variables.keys())
    if missing:
        raise ValidationFailed(
            f"template uses variables that are not supplied: {', '.join(missing)} "
            f"(supply them in template_variables; built-ins are {', '.join(sorted(BUILTIN_VARIABLES))})",
            field=field,
        )


def render(source: str, variables: dict[str, Any], *, now: datetime, timezone: str, field: str) -> str:
    """Render ``source``; built-ins are computed for ``now`` in ``timezone`` and may be overridden."""
    if not has_template_syntax(source):
        return source
    validate(source, variables, field=field)
    template, _ = _compile(source)
    context = {**builtin_variables(now, timezone), **variables}
    try:
        return str(template.render(context))
    except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"template cannot be rendered: {exc}", field=field) from exc
