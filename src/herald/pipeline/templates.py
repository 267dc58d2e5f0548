"""Message templates: ``{{variable}}`` in a sandboxed Jinja2 environment.

Templates are checked when a message is accepted: a syntax error, a variable nobody supplies, or anything that
fails while rendering is a 422 then, not a failure at send time. The sandbox is tightened beyond Jinja's: no
globals (``range``, ``lipsum``, ``cycler``...), only plain values may be printed (no functions or objects), and
string and number growth is capped so a template cannot build gigabytes. Content without template syntax skips
Jinja entirely (the common, fast case).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from herald.core.errors import ValidationFailed

BUILTIN_VARIABLES = frozenset({"date", "time", "datetime", "timezone"})
MAX_RENDERED = 100_000
_PLAIN = (str, int, float, bool, type(None), list, tuple, dict)


def _finalize(value: Any) -> Any:
    if isinstance(value, Undefined):
        return value  # printing it raises UndefinedError, which names what is missing
    if not isinstance(value, _PLAIN):
        raise SecurityError(f"cannot print a {type(value).__name__} in a message")
    return value


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with repetition and exponentiation bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_RENDERED
                ):
                    raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _bounded(width: Any) -> int:
    if not isinstance(width, int) or width > MAX_RENDERED:
        raise SecurityError("width too large")
    return width


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize)
_env.globals.clear()
_env.filters["center"] = lambda value, width=80: str(value).center(_bounded(width))
_env.filters["indent"] = lambda value, width=4, first=False, blank=False: _indent(value, width, first, blank)


def _indent(value: Any, width: Any, first: bool, blank: bool) -> str:
    pad = " " * _bounded(width) if isinstance(width, int) else str(width)[:MAX_RENDERED]
    lines = str(value).splitlines(keepends=True)
    return "".join(
        (pad + line if (i or first) and (blank or line.strip()) else line) for i, line in enumerate(lines)
    )


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
    try:
        context = {**builtin_variables(now, timezone), **variables}
        rendered = str(template.render(context))
    except Exception as exc:  # anything a template does wrong is the caller's 422, never a 500
        raise ValidationFailed(
            f"template cannot be rendered: {type(exc).__name__}: {exc}", field=field
        ) from exc
    if len(rendered) > MAX_RENDERED:
        raise ValidationFailed(f"rendered text is over {MAX_RENDERED} characters", field=field)
    return rendered
