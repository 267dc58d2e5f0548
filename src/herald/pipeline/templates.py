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

BUILTIN_VARIABLES = frozenset(
    {"date", "time", "datetime", "timezone", "week", "weekday", "day", "month", "year"}
)
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


# English names whatever the process locale (strftime's %A and %B follow the locale), so a message reads the
# same from every worker.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


def builtin_variables(now: datetime, timezone: str) -> dict[str, str]:
    """The built-ins for ``now`` seen in ``timezone`` (the schedule's or the message's zone):

    ``date`` 2026-02-04, ``time`` 14:00:00, ``datetime`` 2026-02-04T14:00:00-05:00, ``timezone`` America/New_York,
    ``week`` 2026-W06 (the ISO 8601 week, with its ISO year, so 1 January 2027 is 2026-W53), ``weekday``
    Wednesday, ``day`` 4 (day of the month), ``month`` February and ``year`` 2026."""
    local = now.astimezone(ZoneInfo(timezone))
    iso = local.isocalendar()
    return {
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M:%S"),
        "datetime": local.isoformat(timespec="seconds"),
        "timezone": timezone,
        "week": f"{iso.year}-W{iso.week:02d}",
        "weekday": _WEEKDAYS[local.weekday()],
        "day": str(local.day),
        "month": _MONTHS[local.month - 1],
        "year": str(local.year),
    }


@lru_cache(maxsize=512)
def _builtins_at(now: datetime, timezone: str) -> dict[str, str]:
    """:func:`builtin_variables`, kept for a batch rendering many messages for one moment (a campaign run or a
    bulk send renders thousands with the same ``now``): they were half of a render's time. Never mutated."""
    return builtin_variables(now, timezone)


@lru_cache(maxsize=1024)
def _compile(source: str) -> tuple[Any, frozenset[str]]:
    ast = _env.parse(source)
    template = _env.from_string(ast)
    # Jinja keeps a template's globals as a ChainMap over the environment's, and flattens it on every render;
    # Herald never changes the environment's globals after start, so a plain copy renders ~20% faster.
    template.globals = dict(template.globals)
    return template, frozenset(meta.find_undeclared_variables(ast))


def variables_used(source: str, *, field: str) -> frozenset[str]:
    """The names ``source`` reads (built-ins included); a 422 naming ``field`` if it does not parse."""
    if not has_template_syntax(source):
        return frozenset()
    try:
        return _compile(source)[1]
    except TemplateSyntaxError as exc:
        raise ValidationFailed(
            f"template syntax error on line {exc.lineno}: {exc.message}", field=field
        ) from exc


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
        context = {**_builtins_at(now, timezone), **variables}
        rendered = str(template.render(context))
    except Exception as exc:  # anything a template does wrong is the caller's 422, never a 500
        raise ValidationFailed(
            f"template cannot be rendered: {type(exc).__name__}: {exc}", field=field
        ) from exc
    if len(rendered) > MAX_RENDERED:
        raise ValidationFailed(f"rendered text is over {MAX_RENDERED} characters", field=field)
    return rendered
