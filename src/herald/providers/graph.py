"""Shared pieces of the Meta Graph API adapters (WhatsApp Cloud API, Messenger Send API).

Both post to ``{origin}/v{N}/{object id}/messages`` with a Bearer token and answer failures in the Graph error
shape ``{"error": {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}}``. The error *code*
decides the class first (each adapter passes its own retryable and permanent codes); an unlisted code falls back
to the HTTP status (429 and 5xx retryable, other 4xx permanent) and to Graph's own ``is_transient`` hint.
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import parse_retry_after
from herald.providers.http import json_body

GRAPH_ORIGIN = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v21.0"
GRAPH_VERSION_PATTERN = r"^v\d+\.\d+$"
# Graph object ids (phone number id, page id) go into the URL path: no slashes, no query.
GRAPH_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def raise_graph_error(
    response: httpx.Response, provider: str, *, retryable: frozenset[int], permanent: frozenset[int]
) -> NoReturn:
    """Raise the delivery error a failed Graph answer stands for."""
    status = response.status_code
    error = json_body(response).get("error")
    error = error if isinstance(error, dict) else {}
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    label = f"graph error {code}" + (f"/{subcode}" if subcode is not None else "") if code is not None else ""
    message = str(error.get("message") or "").strip()
    reason = (
        f"{provider}: HTTP {status}" + (f", {label}" if label else "") + (f": {message}" if message else "")
    )
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if code in retryable:
        raise RetryableDeliveryError(reason, retry_after=retry_after)
    if code in permanent:
        raise PermanentDeliveryError(reason)
    if status == 429 or status >= 500 or error.get("is_transient") is True:
        raise RetryableDeliveryError(reason, retry_after=retry_after)
    raise PermanentDeliveryError(reason)
