"""Contact-form rules for email interfaces: which notification emails are a website's contact form, how to read
their fields, and per intent an auto-response and a routing target (herald.producers.email.forms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from herald.producers.email import forms as service
from herald.storage.models import EmailForm
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import Page, Strict, page

router = APIRouter(prefix="/api/v1/email-forms", tags=["email forms"])


class AutoResponse(Strict):
    """A template-library event type (its email or SMS template, as the answer goes), or inline text."""

    event_type: str | None = Field(default=None, min_length=1, max_length=100,
                                   description="e.g. sales_inquiry_response or service_inquiry_response")  # fmt: skip
    subject: str | None = Field(default=None, max_length=500, description="inline: the email's subject")
    body: str | None = Field(default=None, min_length=1, max_length=10_000, description="inline: the text")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.event_type is None) == (self.body is None):
            raise ValueError("give event_type, or an inline body (with an optional subject), not both")
        return self


class IntentSettings(Strict):
    auto_response: AutoResponse | None = None
    route_to: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="the agent the conversation goes to; routing rules otherwise")  # fmt: skip


class FormFields(Strict):
    """The label before each value in the notification ("Name: Dana Smith")."""

    name: str = Field(default="Name", min_length=1, max_length=100)
    email: str = Field(default="Email", min_length=1, max_length=100)
    phone: str = Field(default="Phone", min_length=1, max_length=100)
    message: str = Field(default="Message", min_length=1, max_length=100)


INTENTS_DESCRIPTION = (
    "per intent (buying, service, repair, other; sales is buying): auto-response and routing target"
)
KEYWORDS_DESCRIPTION = "replace the default keyword list of an intent (buying, service, repair)"


class EmailFormCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(
        min_length=1, max_length=200, description="the agent that speaks the auto-responses"
    )
    channel_id: str | None = Field(default=None, description="one email interface; null: all of the tenant's")
    senders: list[str] = Field(default_factory=list, max_length=50,
                               description="addresses, or @domain for any address there")  # fmt: skip
    subject_contains: str | None = Field(default=None, max_length=200)
    fields: FormFields = Field(default_factory=FormFields)
    intents: dict[str, IntentSettings] = Field(
        default_factory=dict, max_length=10, description=INTENTS_DESCRIPTION
    )
    keywords: dict[str, list[str]] | None = Field(default=None, description=KEYWORDS_DESCRIPTION)
    classifier_agent_id: str | None = Field(
        default=None, max_length=200, description="an agent of kind llm whose model classifies the intent"
    )
    variables: dict[str, str] = Field(default_factory=dict, max_length=50,
                                      description="constant template variables, e.g. dealership_name")  # fmt: skip
    enabled: bool = True


class EmailFormPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    channel_id: str | None = None
    senders: list[str] | None = Field(default=None, max_length=50)
    subject_contains: str | None = Field(default=None, max_length=200)
    fields: FormFields | None = None
    intents: dict[str, IntentSettings] | None = Field(default=None, max_length=10)
    keywords: dict[str, list[str]] | None = None
    classifier_agent_id: str | None = Field(default=None, max_length=200)
    variables: dict[str, str] | None = Field(default=None, max_length=50)
    enabled: bool | None = None


class AutoResponseOut(BaseModel):
    event_type: str | None = None
    subject: str | None = None
    body: str | None = None


class IntentSettingsOut(BaseModel):
    auto_response: AutoResponseOut | None
    route_to: str | None


class EmailFormOut(BaseModel):
    id: str
    name: str
    agent_id: str
    channel_id: str | None
    senders: list[str]
    subject_contains: str | None
    fields: dict[str, str]
    intents: dict[str, IntentSettingsOut]
    keywords: dict[str, list[str]] | None
    classifier_agent_id: str | None
    variables: dict[str, str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


def form_out(row: EmailForm) -> dict[str, Any]:
    return EmailFormOut(
        id=row.id, name=row.name, agent_id=row.agent_id, channel_id=row.channel_id, senders=row.senders,
        subject_contains=row.subject_contains, fields=row.fields,
        intents={k: IntentSettingsOut.model_validate(v) for k, v in row.intents.items()}, keywords=row.keywords,
        classifier_agent_id=row.classifier_agent_id, variables=row.variables, enabled=row.enabled,
        created_at=row.created_at, updated_at=row.updated_at,
    ).model_dump(mode="json")  # fmt: skip


def _values(body: EmailFormCreate | EmailFormPatch) -> dict[str, Any]:
    """The body as the service takes it: only what was given (a PATCH), auto-responses without empty keys."""
    values = body.model_dump(exclude_unset=True)
    if body.fields is not None:
        values["fields"] = body.fields.model_dump()
    if body.intents is not None:
        values["intents"] = {name: s.model_dump(exclude_none=True) for name, s in body.intents.items()}
    return values


@router.post(
    "", status_code=201, response_model=EmailFormOut, responses=errors(409), openapi_extra=IDEMPOTENT
)
async def create_email_form(
    body: EmailFormCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """A contact-form rule; its agents, interface and templates are checked (a 422 names the field at fault)."""

    async def create(session: AsyncSession) -> dict[str, Any]:
        values = {**_values(body), "fields": body.fields.model_dump()}
        return form_out(await service.create_form(rt, session, principal, values))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("", **answers(Page[EmailFormOut]))
async def list_email_forms(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_forms(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([form_out(r) for r in rows], limit)


@router.get("/{form_id}", response_model=EmailFormOut)
async def get_email_form(form_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return form_out(await service.get_form(session, principal.tenant_id, form_id))


@router.patch("/{form_id}", response_model=EmailFormOut)
async def update_email_form(
    form_id: str, body: EmailFormPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change what is given; the whole rule is checked again."""
    async with rt.sessions.begin() as session:
        return form_out(await service.update_form(rt, session, principal, form_id, _values(body)))


@router.delete("/{form_id}", status_code=204)
async def delete_email_form(form_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_form(session, principal, form_id)
    return Response(status_code=204)
