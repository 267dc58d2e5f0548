"""Contacts: the people routing can choose a platform for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin import contacts
from herald.storage.models import Contact
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import ContactCreate, ContactOut, ContactPatch, Page, page

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


def contact_out(contact: Contact) -> dict[str, Any]:
    return ContactOut.model_validate(contact, from_attributes=True).model_dump(mode="json")


@router.post("", status_code=201, response_model=ContactOut, responses=errors(409), openapi_extra=IDEMPOTENT)
async def create_contact(
    body: ContactCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    async def create(session: AsyncSession) -> dict[str, Any]:
        return contact_out(await contacts.create_contact(session, principal, body.model_dump(mode="json")))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("", **answers(Page[ContactOut]))
async def list_contacts(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await contacts.list_contacts(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([contact_out(c) for c in rows], limit)


@router.get("/{contact_id}", response_model=ContactOut)
async def get_contact(contact_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return contact_out(await contacts.get_contact(session, principal.tenant_id, contact_id))


@router.patch("/{contact_id}", response_model=ContactOut)
async def update_contact(
    contact_id: str, body: ContactPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    async with rt.sessions.begin() as session:
        return contact_out(await contacts.update_contact(session, principal, contact_id, changes))
