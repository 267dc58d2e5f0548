"""Telling a database outage (a restart, a dropped connection, a full pool) from a bug.

An outage is temporary and says nothing about the request or the work: the API answers it ``503`` with
``Retry-After`` (:mod:`herald.web.api.problems`), and the loops wait and try again. Everything else is a bug or
a refusal and is treated as such. The pool pings a connection that sat idle before lending it
(:func:`herald.storage.engine.create_engine`) and drops those a failed statement invalidated, so the
statements after a restart find live connections.
"""

from __future__ import annotations

import errno

import asyncpg
from sqlalchemy import exc as sa

# The errors a driver or the pool raises when the server is unreachable, restarting or dropped the connection.
_DRIVER = (
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # 57P01 admin shutdown, 57P03 cannot connect now, ...
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress" after a reset
    ConnectionError,  # refused, reset, aborted, broken pipe
)
_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
        errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL,
    }
)  # fmt: skip

RETRY_AFTER_SECONDS = 2
"""What the API tells a client to wait during an outage: restarts take seconds."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the database is unreachable for now, not that the work is wrong."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if _outage_itself(current):
            return True
        seen += 1
        current = current.__cause__ or current.__context__
    return False


def _outage_itself(exc: BaseException) -> bool:
    if isinstance(exc, sa.DBAPIError):
        # OperationalError: the server went away, refused, or (SQLite) is locked past the busy timeout;
        # InterfaceError: the driver's connection is unusable. Any error that invalidated its connection.
        return exc.connection_invalidated or isinstance(exc, sa.OperationalError | sa.InterfaceError)
    if isinstance(exc, sa.TimeoutError):  # the pool had no connection to lend in time
        return True
    if isinstance(exc, _DRIVER):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _ERRNOS
    return False


HANDLED: tuple[type[Exception], ...] = (sa.DBAPIError, sa.TimeoutError, *_DRIVER, OSError)
"""The exception types whose instances may be an outage (:func:`is_outage` decides), for handlers to register."""
