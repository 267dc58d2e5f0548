"""Messages by id: detail with attempts, delivery report, cancel; and many messages in one request."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from herald.core.errors import ContentTooLarge, ValidationFailed
from herald.pipeline import accept as service
from herald.pipeline import escalation, report
from herald.producers import bulk
from herald.web.api.contract import answers, errors
from herald.web.api.deps import CurrentPrincipal, RuntimeDep, read_capped
from herald.web.api.routes.proactive import intent_from, message_detail, message_out
from herald.web.api.schemas import BulkItem, BulkOut, MessageDetail, MessageOut, ReportOut

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


MAX_BULK_BYTES = 64 * 1024 * 1024
_BULK_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["messages"],
                "properties": {
                    "messages": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": bulk.MAX_ITEMS,
                        "items": {"type": "object", "description": "a send request plus idempotency_key"},
                    }
                },
            }
        }
    },
}


@router.post("/bulk", openapi_extra={"requestBody": _BULK_BODY}, **answers(BulkOut, also=(413, 422)))
async def send_bulk(request: Request, rt: RuntimeDep, principal: CurrentPrincipal) -> JSONResponse:
    """Up to 10,000 messages, each judged on its own: ``{"accepted", "rejected", "replayed", "items"}`` with, per
    item in order, ``{"index", "id", "status"}``, ``{"index", "id", "replayed": true}`` or
    ``{"index", "error": {"status", "field", "detail"}}``. Items take the fields of ``/messaging/proactive/send``
    plus ``idempotency_key``."""
    raw = await read_capped(request, MAX_BULK_BYTES)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than any message needs
        raise ValidationFailed("the request body is not valid JSON", field="body") from exc
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValidationFailed("give an object with a list of messages", field="messages")
    unknown = sorted(set(body) - {"messages"})
    if unknown:
        raise ValidationFailed("unknown field", field=unknown[0])
    items: list[Any] = body["messages"]
    if not items:
        raise ValidationFailed("give at least one message", field="messages")
    if len(items) > bulk.MAX_ITEMS:
        raise ContentTooLarge(
            f"{len(items)} messages; at most {bulk.MAX_ITEMS} per request: send them in parts",
            field="messages",
        )
    entries: list[bulk.Entry] = []
    invalid: list[bulk.Outcome] = []
    for index, item in enumerate(items):
        try:
            parsed = BulkItem.model_validate(item)
        except ValidationError as exc:
            invalid.append(_invalid(index, exc))
            continue
        key = parsed.idempotency_key
        entries.append(
            bulk.Entry(
                index, intent_from(parsed), key,
                bulk.fingerprint(parsed.model_dump(mode="json", exclude={"idempotency_key"})) if key else "",
            )
        )  # fmt: skip
    outcomes = await bulk.accept_many(rt, principal, entries) if entries else []
    # Answered as built: the summary is plain JSON already, and FastAPI's response-model pass (jsonable_encoder
    # over every item, then validation) cost 40 microseconds an item, a sixth of a 10,000-message request.
    return JSONResponse(bulk.summary([*invalid, *outcomes]))


def _invalid(index: int, exc: ValidationError) -> bulk.Outcome:
    """The item's first error names its field; all of them are listed."""
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())) or None,
            "message": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in exc.errors()
    ]
    if errors[0]["field"] is None:
        errors[0]["message"] = "each message must be a JSON object"
    return bulk.Outcome.failed(index, 422, errors[0]["field"], str(errors[0]["message"]), errors=errors)


@router.get("/{message_id}/report", **answers(ReportOut))
async def get_report(message_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Seed 003's delivery report: status, channel, every attempt, state-change times, cost."""
    async with rt.sessions() as session:
        return await report.delivery_report(session, principal.tenant_id, message_id)


@router.get("/{message_id}", response_model=MessageDetail)
async def get_message(message_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A message with every delivery attempt (provider, outcome, error, duration)."""
    async with rt.sessions() as session:
        message = await service.get_message(session, principal.tenant_id, message_id)
        attempts = await service.attempts_of(session, message.id)
        linked = await escalation.linked(session, principal.tenant_id, [message])
    return message_detail(message, attempts, linked)


@router.post("/{message_id}/cancel", response_model=MessageOut, responses=errors(409))
async def cancel_message(message_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Cancel a message that is still queued, awaiting approval, or held in a digest (it is then left out of it)."""
    async with rt.sessions.begin() as session:
        return message_out(await service.cancel(session, principal, message_id))
