"""What the client raises. Every error Herald answers with is RFC 9457 problem details; each status has its own
class carrying those fields, so callers catch what they can handle and let the rest rise::

    HeraldError                 anything this client raises on purpose
    ├── APIConnectionError      Herald could not be reached or did not answer in time
    └── APIError                Herald answered with an error: .status .title .detail .field .errors .problem
        ├── BadRequestError         400
        ├── AuthenticationError     401  no API key, or an unknown or revoked one
        ├── PermissionDenied        403  governance refuses it (a STUDENT agent's message)
        ├── NotFoundError           404  no such object for this tenant
        ├── ConflictError           409  the object's state or an idempotency key forbids it
        ├── PayloadTooLargeError    413  too many messages or too large a body
        ├── ValidationError         422  .field names what is wrong
        ├── RateLimitError          429  .retry_after, in seconds, when Herald says
        └── ServerError             5xx

This tree is the client's own; it is unrelated to the server's ``herald.core.errors``.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx


class HeraldError(Exception):
    """Root of every error the client raises on purpose."""


class APIConnectionError(HeraldError):
    """Herald could not be reached, or did not answer in time; the request may or may not have been applied."""


class APIError(HeraldError):
    """Herald answered with an error status; the problem details' fields are attributes."""

    def __init__(self, status: int, problem: dict[str, Any], headers: httpx.Headers | None = None) -> None:
        self.status = status
        self.problem = problem
        self.headers = headers if headers is not None else httpx.Headers()
        self.type: str = str(problem.get("type") or "about:blank")
        self.title: str = str(problem.get("title") or "Error")
        self.detail: str = str(problem.get("detail") or self.title)
        self.instance: str | None = problem.get("instance")
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = errors if isinstance(errors, list) else []
        first = self.errors[0].get("field") if self.errors and isinstance(self.errors[0], dict) else None
        self.field: str | None = first or problem.get("field")
        super().__init__(f"{status} {self.title}: {self.detail}")


class BadRequestError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDenied(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class PayloadTooLargeError(APIError):
    pass


class ValidationError(APIError):
    pass


class RateLimitError(APIError):
    @property
    def retry_after(self) -> float | None:
        """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date), if Herald sent it."""
        return retry_after_seconds(self.headers.get("retry-after"))


class ServerError(APIError):
    pass


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for(response: httpx.Response) -> APIError:
    """The typed error for an error answer; a body that is not problem details still gives a useful detail."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:500]
        body = {"title": response.reason_phrase or "Error", "detail": text or response.reason_phrase}
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(status, body, response.headers)
