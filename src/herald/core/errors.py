"""Herald's exception tree.

Every error Herald raises on purpose descends from one root, so callers can catch the family they care about::

    HeraldError
    ├── ConfigError                 a setting is missing or malformed (raised at start-up)
    ├── RequestError                the caller asked for something wrong; carries an HTTP status
    │   ├── ValidationFailed        422: a field is invalid (names the field)
    │   ├── NotFound                404: no such object for this tenant
    │   ├── Conflict                409: the object's state or an idempotency key forbids it
    │   ├── Gone                    410: it existed but is no longer usable (an expired decision link)
    │   ├── Forbidden               403: governance refuses the action
    │   ├── Unauthorized            401: no or bad credentials
    │   ├── TooManyRequests         429: a rate limit refuses it
    │   ├── ContentTooLarge         413: the body is over the limit
    │   └── Unavailable             503: not now (a disabled interface); carries Retry-After
    └── DeliveryError               a channel could not deliver one message
        ├── RetryableDeliveryError  try again later (timeouts, 5xx, 429); may carry retry_after
        └── PermanentDeliveryError  retrying will not help (bad token, unknown recipient, too long)

Errors that belong to one part of Herald are declared beside it and still descend from :class:`HeraldError`
(an outbound destination refused by the guard, an agent callback that failed, a schedule that does not parse,
a monitor source that cannot be read, a dashboard sign-in that is needed); ``tests/unit/core/test_errors.py``
checks that every exception class in ``herald`` does, and that this drawing matches the classes above.
Driver and httpx errors are converted at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class HeraldError(Exception):
    """Root of every error Herald raises on purpose."""


class ConfigError(HeraldError):
    """A setting is missing or malformed."""


class RequestError(HeraldError):
    """An API caller's request cannot be served; rendered as RFC 9457 problem details."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ValidationFailed(RequestError):
    status = 422
    title = "Unprocessable content"


class NotFound(RequestError):
    status = 404
    title = "Not found"


class Conflict(RequestError):
    status = 409
    title = "Conflict"


class Gone(RequestError):
    status = 410
    title = "Gone"


class Forbidden(RequestError):
    status = 403
    title = "Forbidden"


class Unauthorized(RequestError):
    status = 401
    title = "Unauthorized"


class TooManyRequests(RequestError):
    status = 429
    title = "Too many requests"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, field=field)
        self.retry_after = retry_after  # seconds until a retry may succeed; sent as Retry-After


class ContentTooLarge(RequestError):
    status = 413
    title = "Content too large"


class Unavailable(RequestError):
    """Not now: the caller should try again later (a disabled interface, so providers redeliver)."""

    status = 503
    title = "Service unavailable"


class DeliveryError(HeraldError):
    """A channel could not deliver one message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableDeliveryError(DeliveryError):
    """Transient failure; the worker retries, waiting at least ``retry_after`` seconds when given."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot succeed; the message fails (or falls back) at once."""
