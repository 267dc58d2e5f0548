"""Operations endpoints: ``/health`` and ``/metrics`` (no tenant data, so no tenant key)."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from herald.admin import operations
from herald.core.errors import Unauthorized
from herald.core.status import Status
from herald.web.api.deps import RuntimeDep
from herald.web.api.schemas import HealthOut

router = APIRouter(tags=["operations"])
_WORKER_STALE = timedelta(seconds=30)


@router.get(
    "/health",
    response_model=None,
    responses={
        200: {"model": HealthOut},
        503: {"model": HealthOut, "description": "the database or every worker is down"},
    },
)
async def health(rt: RuntimeDep) -> JSONResponse:
    """200 when the database answers and a worker has reported in the last 30 seconds; else 503."""
    body: dict[str, Any] = {"status": "ok", "database": "ok", "workers": 0}
    try:
        async with rt.sessions() as session:
            body["workers"] = await operations.live_workers(session, _WORKER_STALE)
    except Exception:
        body.update(status="unavailable", database="unreachable")
        return JSONResponse(body, status_code=503)
    if body["workers"] == 0:
        body["status"] = "degraded: no worker alive"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, rt: RuntimeDep) -> Response:
    """Prometheus text format; guarded by ``HERALD_METRICS_TOKEN`` when one is set."""
    token = rt.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("metrics need 'Authorization: Bearer <HERALD_METRICS_TOKEN>'")
    async with rt.sessions() as session:
        depth = await operations.queue_depth(session)
    for status in (Status.QUEUED, Status.SENDING, Status.PENDING_APPROVAL):
        rt.metrics.queue_depth.labels(status).set(depth.get(status, 0))
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
