"""WhatsApp Cloud API status webhooks: JSON signed with ``X-Hub-Signature-256: sha256=<hex HMAC(app secret)>``.

Statuses arrive as ``entry[].changes[].value.statuses[]``; a ``read`` may come without a ``delivered`` and events
may come out of order (``receipts.apply`` only moves forward).
"""

from __future__ import annotations

from typing import Any

from herald.core import jsonbody
from herald.providers.meta_webhooks import verify_signature
from herald.providers.receipts import CallbackRequest, Receipt


async def parse(credentials: dict[str, Any], request: CallbackRequest) -> list[Receipt]:
    verify_signature(credentials, request)
    payload = jsonbody.parse(request.body)
    receipts = []
    for entry in _dicts(payload.get("entry") if isinstance(payload, dict) else None):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            for status in _dicts(value.get("statuses") if isinstance(value, dict) else None):
                state = status.get("status")
                if state in ("delivered", "read", "failed") and status.get("id"):
                    errors = _dicts(status.get("errors")) or [{}]
                    error = errors[0].get("title") or errors[0].get("message") if state == "failed" else None
                    receipts.append(Receipt(str(status["id"]), state, str(error) if error else None))
    return receipts


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects in a list that should hold objects: a signed but odd payload is skipped, not a 500."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
