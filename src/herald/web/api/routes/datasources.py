"""Data sources: a tenant's own databases. The URL is write-only: answers show it with the password masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin import datasources as service
from herald.storage.models import DataSource
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import Page, Strict, page

router = APIRouter(prefix="/api/v1/data-sources", tags=["data sources"])

URL_DESCRIPTION = (
    "postgresql://user:password@host:5432/db, mysql://user:password@host:3306/db (MariaDB too) or "
    "sqlite:///path/to/file.db; probed when saved. Query parameters are allow-listed: PostgreSQL sslmode, "
    "application_name, connect_timeout; MySQL ssl_mode, charset, connect_timeout; SQLite none (anything else "
    "is a 422 naming url). Write-only: answers show it with the password masked"
)


class DataSourceCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=4000, description=URL_DESCRIPTION)


class DataSourcePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description=URL_DESCRIPTION
        + "; a password given as *** keeps the stored one when the backend, host, port, user and database are "
        "unchanged (a 422 naming url otherwise)",
    )


class DataSourceOut(BaseModel):
    id: str
    name: str
    backend: str = Field(description="postgresql, mysql or sqlite")
    url: str = Field(description="the URL with its password (and secret-looking parameters) shown as ***")
    created_at: datetime
    updated_at: datetime


def source_out(row: DataSource) -> dict[str, Any]:
    return DataSourceOut(
        id=row.id, name=row.name, backend=row.backend, url=row.display_url,
        created_at=row.created_at, updated_at=row.updated_at,
    ).model_dump(mode="json")  # fmt: skip


@router.post(
    "", status_code=201, response_model=DataSourceOut, responses=errors(409), openapi_extra=IDEMPOTENT
)
async def create_data_source(
    body: DataSourceCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Register a database; the connection is tried first (a 422 naming ``url`` says why it failed)."""

    async def create(session: AsyncSession) -> dict[str, Any]:
        return source_out(
            await service.create_data_source(rt, session, principal, name=body.name, url=body.url)
        )

    # The fingerprint keeps no secret in clear: the body is stored only as a digest.
    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("", **answers(Page[DataSourceOut]))
async def list_data_sources(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_data_sources(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([source_out(r) for r in rows], limit)


@router.get("/{source_id}", response_model=DataSourceOut)
async def get_data_source(source_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return source_out(await service.get_data_source(session, principal.tenant_id, source_id))


@router.patch("/{source_id}", response_model=DataSourceOut)
async def update_data_source(
    source_id: str, body: DataSourcePatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Rename, or change the URL (probed again)."""
    async with rt.sessions.begin() as session:
        row = await service.update_data_source(
            rt, session, principal, source_id, name=body.name, url=body.url
        )
        return source_out(row)


@router.delete("/{source_id}", status_code=204)
async def delete_data_source(source_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_data_source(rt, session, principal, source_id)
    return Response(status_code=204)
