"""RFC 9457 problem details for every error, naming the field at fault."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.core.errors import RequestError, TooManyRequests, Unauthorized, Unavailable
from herald.storage import outage

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    _install_outage(app)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        headers = {"WWW-Authenticate": 'Bearer realm="herald"'} if isinstance(exc, Unauthorized) else None
        if isinstance(exc, Unavailable):
            headers = {"Retry-After": "60"}
        if isinstance(exc, TooManyRequests) and exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return problem(
            exc.status, exc.title, exc.detail, errors=errors, headers=headers, instance=request.url.path
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for item in exc.errors():
            if item.get("type") == "json_invalid":
                errors.append({"field": "body", "message": "the request body is not valid JSON"})
                continue
            field = _field(item.get("loc", ()))
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            errors.append({"field": field, "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]) or "invalid request"
        return problem(422, "Unprocessable content", detail, errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}
        return problem(
            exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), instance=request.url.path
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "Internal server error", "an unexpected error occurred", instance=request.url.path
        )


def _install_outage(app: FastAPI) -> None:
    """A database outage (restart, dropped connection, exhausted pool) answers ``503`` with ``Retry-After``: the
    request was not wrong and may succeed in a moment. Anything else these types cover is a bug: re-raised, so
    the handler of unexpected errors answers it."""

    async def _database_outage(request: Request, exc: Exception) -> JSONResponse:
        if not outage.is_outage(exc):
            raise exc
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return problem(
            503, "Service unavailable", "the database is unavailable; try again shortly",
            headers={"Retry-After": str(outage.RETRY_AFTER_SECONDS)}, instance=request.url.path,
        )  # fmt: skip

    for kind in outage.HANDLED:
        app.add_exception_handler(kind, _database_outage)
