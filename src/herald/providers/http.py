"""Shared HTTP plumbing for provider adapters: one place that turns transport failures into delivery errors."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.core.netguard import BlockedDestination
from herald.providers.base import parse_retry_after


def origin(base_url: str | None, default: str) -> str:
    """The provider's scheme://host[:port]; a channel's ``base_url`` replaces it (tests, self-hosted gateways)."""
    return (base_url or default).rstrip("/")


def rebase(url: str, base_url: str | None) -> str:
    """A full provider URL (webhooks) with its scheme://host[:port] replaced by ``base_url``; path and query stay."""
    if not base_url:
        return url
    target, base = urlsplit(url), urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + target.path, target.query, ""))


@functools.lru_cache(maxsize=4096)
def parsed(url: str) -> httpx.URL:
    """``url`` parsed once: httpx parses a string URL with regular expressions on every request (about a tenth
    of a worker's CPU time sending webhooks), and a channel sends to the same few URLs. httpx.URL is immutable."""
    return httpx.URL(url)


async def call(
    http: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Make one provider request; timeouts and connection failures are retryable, a refused destination not."""
    try:
        return await http.request(method, parsed(url), follow_redirects=False, **kwargs)
    except BlockedDestination as exc:
        raise PermanentDeliveryError(f"{provider}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise RetryableDeliveryError(f"{provider} timed out") from exc
    except httpx.TransportError as exc:
        raise RetryableDeliveryError(f"{provider} unreachable: {type(exc).__name__}") from exc


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or an empty dict when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def raise_for_status(response: httpx.Response, provider: str, reason: str | None = None) -> None:
    """The common HTTP classes: 429 and 5xx retryable (with Retry-After), other non-2xx permanent."""
    status = response.status_code
    if 200 <= status < 300:
        return
    text = f"{provider} answered HTTP {status}" + (f": {reason}" if reason else "")
    if status == 429 or status >= 500:
        raise RetryableDeliveryError(text, retry_after=parse_retry_after(response.headers.get("retry-after")))
    raise PermanentDeliveryError(text)
