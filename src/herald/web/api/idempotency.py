"""Create requests with an ``Idempotency-Key``: the same key and body replay the first response; the same key
with another body is a 409. The record is written in the creating transaction, so a crash cannot leave a created
object without its key (or the reverse)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, ValidationFailed
from herald.core.principal import Principal
from herald.runtime import Runtime
from herald.storage.models import IdempotencyRecord
from herald.storage.types import utcnow

Create = Callable[[AsyncSession], Awaitable[dict[str, Any]]]
IDEMPOTENCY_HEADER = "idempotency-key"


def _fingerprint(request: Request, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> JSONResponse:
    if record.request_hash != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request", field="Idempotency-Key"
        )
    return JSONResponse(
        record.response, status_code=record.status_code, headers={"Idempotent-Replayed": "true"}
    )


async def create_once(
    rt: Runtime, principal: Principal, request: Request, body: Any, create: Create, *, status_code: int = 201
) -> JSONResponse:
    """Run ``create`` in one transaction, at most once per idempotency key."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        async with rt.sessions.begin() as session:
            payload = await create(session)
        return JSONResponse(payload, status_code=status_code)
    if not 1 <= len(key) <= 200:
        raise ValidationFailed("must be 1 to 200 characters", field="Idempotency-Key")
    fingerprint = _fingerprint(request, body)
    try:
        async with rt.sessions.begin() as session:
            found = await session.get(IdempotencyRecord, (principal.tenant_id, key))
            if found is not None:
                return _replay(found, fingerprint)
            # Claim the key before creating: a concurrent retry blocks on it, then replays our answer.
            record = IdempotencyRecord(
                tenant_id=principal.tenant_id,
                key=key,
                request_hash=fingerprint,
                status_code=0,
                response={},
                created_at=utcnow(),
            )
            session.add(record)
            await session.flush()
            payload = await create(session)
            record.status_code = status_code
            record.response = payload
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        async with rt.sessions() as session:
            record = (
                await session.execute(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.tenant_id == principal.tenant_id, IdempotencyRecord.key == key
                    )
                )
            ).scalar_one()
        return _replay(record, fingerprint)
    return JSONResponse(payload, status_code=status_code)
