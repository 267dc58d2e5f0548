"""Logging, configured once: structlog for Herald's own lines and for every stdlib ``logging`` record (uvicorn,
alembic, Herald's ``logging.getLogger`` calls), so a process writes one format.

Production writes one JSON object a line (for a log pipeline); development writes readable key-value lines.
What is known about the work at hand (request id, tenant, message id, agent) is bound in context variables and
joins every line logged while it lasts. No secret reaches the output: keys named like credentials are
redacted, and so are values that look like Herald API keys, webhook secrets or bearer tokens, wherever they
appear (a stdlib message formatted with a key as one of its arguments included).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
# Keys whose values are secrets, compared lower-cased with "-" read as "_" (so "X-Api-Key" matches too).
SECRET_KEYS = frozenset(
    {
        "authorization",
        "api_key",
        "x_api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "auth_token",
        "bot_token",
        "secret",
        "secret_key",
        "secret_token",
        "client_secret",
        "signing_secret",
        "webhook_secret",
        "password",
        "passwd",
        "credentials",
        "cookie",
        "set_cookie",
        "code",
        "otp",
    }
)
_SECRET_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_credentials")
# Herald API keys (hk_ + 43 url-safe characters), Standard Webhooks secrets and bearer credentials in text.
_SECRET_VALUES = re.compile(
    r"\bhk_[A-Za-z0-9_-]{8,}|\bwhsec_[A-Za-z0-9+/=_-]{8,}|(?i:\bbearer\s+)[^\s\"',;]{8,}"
)
_MAX_DEPTH = 6


def is_secret_key(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (its value is then never written)."""
    normal = name.lower().replace("-", "_")
    return normal in SECRET_KEYS or normal.endswith(_SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    """``text`` with every Herald key, webhook secret and bearer credential in it replaced."""
    return _SECRET_VALUES.sub(
        lambda m: (
            m.group(0).split("_", 1)[0] + "_" + REDACTED
            if m.group(0)[:3].lower() in ("hk_", "whs")
            else "Bearer " + REDACTED
        ),
        text,
    )


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, depth + 1) for item in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The structlog processor: secret-named fields blanked, secret-looking values masked, at any depth."""
    redacted: EventDict = _redact(event_dict)
    return redacted


# -- what the current work is about ---------------------------------------------------------------------------


@dataclass
class _Work:
    """The fields bound during one request (or one unit of work), read by every line logged inside it and by
    whoever logs its summary line, even when they were bound in a task of their own."""

    fields: dict[str, Any] = field(default_factory=dict)


# One context variable for the unit of work, merged into each line by :func:`merge_work`. structlog's own
# contextvars cost a variable, a token and a reset per field: 14 µs for each delivery's three fields, about a
# twentieth of a worker's time per message in a drain; this costs a dict.
_current: contextvars.ContextVar[_Work | None] = contextvars.ContextVar("herald_log_work", default=None)


def bind(**values: Any) -> None:
    """Add ``values`` (tenant, message_id, agent...) to every line logged from here until the work ends."""
    values = {k: v for k, v in values.items() if v is not None}
    work = _current.get()
    if work is None:  # outside any unit of work: bound for the rest of this context, as structlog does
        structlog.contextvars.bind_contextvars(**values)
    else:
        work.fields.update(values)


@contextlib.contextmanager
def bound(**values: Any) -> Iterator[dict[str, Any]]:
    """A unit of work (a request, one message's delivery): ``values`` and whatever :func:`bind` adds inside are
    logged with every line until it ends (a unit inside another starts with the outer one's fields). Yields
    the bound fields as they grow."""
    outer = _current.get()
    fields = {} if outer is None else dict(outer.fields)
    fields.update((k, v) for k, v in values.items() if v is not None)
    work = _Work(fields)
    marker = _current.set(work)
    try:
        yield work.fields
    finally:
        _current.reset(marker)


def merge_work(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: the current unit of work's fields join the line (what the call itself passes wins)."""
    work = _current.get()
    if work is not None:
        for name, value in work.fields.items():
            event_dict.setdefault(name, value)
    return event_dict


# -- configuration --------------------------------------------------------------------------------------------


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        merge_work,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure(*, json: bool, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logging to ``stream`` (stderr) as JSON lines or key-value lines.

    Called once by each ``herald`` command before anything logs; calling it again replaces the handler (tests
    do, to capture output)."""
    shared = _shared_processors()
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
        final: list[Processor] = [structlog.processors.format_exc_info, redact_secrets, renderer]
    else:
        out = stream or sys.stderr
        # Plain tracebacks: structlog's default (rich, where installed) prints every frame's local variables,
        # credentials and connection parameters among them, and costs a core when a database outage makes
        # every loop log its failure.
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), sort_keys=True, exception_formatter=structlog.dev.plain_traceback
        )
        final = [redact_secrets, renderer]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("herald")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "herald"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers would otherwise keep their own handlers and format; its access log is replaced by
    # Herald's (herald.web.api.observe), which names the route template rather than a path that may hold a token.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.disabled = False  # a dictConfig earlier in the process (uvicorn's own, alembic's) may have
        logger.setLevel(logging.NOTSET)  # disabled it or raised its level: the root decides from here
    for name, existing in list(logging.root.manager.loggerDict.items()):
        if name.split(".")[0] == "herald" and isinstance(existing, logging.Logger):
            existing.disabled = False  # Herald's own, created at import, disabled by the same dictConfig
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin at start
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _forward_to_stdlib() -> None:
    """Before :func:`configure` (Herald's app embedded elsewhere, tests), structured lines become plain stdlib
    records with their fields as ``extra``: the host's logging decides, and nothing is printed on its own."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            merge_work,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def reset() -> None:
    """Undo :func:`configure`: Herald's handler leaves the root logger and structured lines go to stdlib."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "herald"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    _forward_to_stdlib()


if not structlog.is_configured():
    _forward_to_stdlib()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; ``log.info("event", key=value)`` lines carry the bound context too."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
