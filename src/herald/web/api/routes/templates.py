"""The template library: Herald's defaults and the tenant's overrides, keyed by event type, channel and locale.

``GET /templates`` lists every key in effect for the tenant; ``GET /templates/{event_type}/{channel}/{locale}``
answers the template a campaign would use for that key (locale fallback included) with Herald's default beside
it; ``PUT`` the same path creates or replaces the tenant's override (201 created, 200 replaced); ``DELETE`` removes
it, and the default is in effect again. ``POST .../render`` previews it with variables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

from herald.admin import templates as service
from herald.core.timezones import check_timezone
from herald.pipeline.library import render_resolved, resolve_template
from herald.web.api.contract import answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.schemas import Items, Page, Strict, page

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])

KEY = "/{event_type}/{channel}/{locale}"
EventTypePath = Annotated[str, Path(max_length=50, description="e.g. seven_day_checkin, or one of your own")]
ChannelPath = Annotated[str, Path(max_length=16, description="a platform: sms, email, whatsapp...")]
LocalePath = Annotated[str, Path(max_length=35, description="a BCP 47 tag: en, en-GB, pt-BR...")]
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class TemplateText(BaseModel):
    """A template's text: ``subject`` on email only."""

    subject: str | None
    body: str


class TemplateOut(BaseModel):
    """One key of the library as the tenant sees it: the text in effect and where it comes from."""

    key: str = Field(
        description="event_type/channel/locale: the path of this template, and the list's cursor"
    )
    event_type: str
    channel: str
    locale: str
    source: Literal["tenant", "default"] = Field(
        description="tenant: the tenant's override is in effect; default: the text Herald ships"
    )
    subject: str | None
    body: str
    variables: list[str] = Field(description="the names the template reads (built-ins aside)")
    updated_at: datetime | None = Field(description="when the tenant's override was last saved")
    default: TemplateText | None = Field(description="Herald's default for this key, if it ships one")


class ResolvedTemplateOut(TemplateOut):
    requested_locale: str = Field(description="the locale asked for; locale is the one resolved to")


class TemplatePut(Strict):
    """The tenant's override. ``variables`` declares names beyond those the event type supplies (templates of an
    event type of your own declare all theirs); using any other name is a 422 naming the field."""

    subject: str | None = Field(default=None, max_length=service.MAX_SUBJECT, description="email only")
    body: str = Field(min_length=1, max_length=service.MAX_BODY)
    variables: list[VariableName] = Field(default_factory=list, max_length=100)


class TemplateRender(Strict):
    """Variables for a preview: the event type's sample values fill whatever is left out."""

    variables: dict[str, Any] = Field(default_factory=dict)
    timezone: Annotated[str, AfterValidator(check_timezone)] = Field(default="UTC", max_length=64)


class RenderedOut(BaseModel):
    subject: str | None
    body: str
    locale: str
    source: Literal["tenant", "default"]


class EventTypeOut(BaseModel):
    event_type: str
    description: str
    variables: list[str] = Field(description="what a campaign's audience supplies (built-ins aside)")
    sample_variables: dict[str, str]
    channels: list[str] = Field(description="channels Herald ships a default for")
    locales: list[str]


def _out(entry: service.Entry) -> dict[str, Any]:
    default = entry.default
    answer = {
        "key": entry.key.path,
        "event_type": entry.key.event_type,
        "channel": entry.key.channel,
        "locale": entry.key.locale,
        "source": entry.source,
        "subject": entry.subject,
        "body": entry.body,
        "variables": list(entry.variables),
        "updated_at": entry.updated_at,
        "default": None if default is None else {"subject": default.subject, "body": default.body},
    }
    model = ResolvedTemplateOut if entry.requested_locale is not None else TemplateOut
    if entry.requested_locale is not None:
        answer["requested_locale"] = entry.requested_locale
    return model.model_validate(answer).model_dump(mode="json")


@router.get("", **answers(Page[TemplateOut]))
async def list_templates(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    event_type: Annotated[str | None, Query(max_length=50)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    locale: Annotated[str | None, Query(max_length=35, description="this exact locale")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Every template in effect for the tenant, in key order: Herald's defaults, replaced key by key by the
    tenant's overrides, and the tenant's templates for event types of its own."""
    entries = await service.list_templates(
        rt, principal.tenant_id, event_type=event_type, channel=channel, locale=locale, limit=limit,
        cursor=cursor,
    )  # fmt: skip
    return page([_out(e) for e in entries], limit, cursor_of="key")


@router.get("/event-types", **answers(Items[EventTypeOut]))
async def list_event_types(principal: CurrentPrincipal) -> dict[str, Any]:
    """The event types Herald ships templates for, with the variables each supplies and sample values."""
    items = [
        EventTypeOut(
            event_type=event.name, description=event.description, variables=list(event.variables),
            sample_variables=event.sample, channels=sorted({c for c, _ in event.texts}),
            locales=sorted({loc for _, loc in event.texts}),
        ).model_dump(mode="json")
        for event in service.event_types()
    ]  # fmt: skip
    return {"items": items}


@router.get(KEY, response_model=ResolvedTemplateOut)
async def get_template(
    event_type: EventTypePath,
    channel: ChannelPath,
    locale: LocalePath,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """The template in effect, as a campaign resolves it: the tenant's override, else Herald's default, for the
    locale or the first of its fallbacks (en-GB, then en) that has one; Herald's default for it beside."""
    key = service.check_key(event_type, channel, locale)
    return _out(await service.get_template(rt, principal.tenant_id, key))


@router.put(
    KEY,
    response_model=None,
    responses={200: {"model": TemplateOut, "description": "replaced"},
               201: {"model": TemplateOut, "description": "created"}, **errors(409)},
)  # fmt: skip
async def put_template(
    event_type: EventTypePath,
    channel: ChannelPath,
    locale: LocalePath,
    body: TemplatePut,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
) -> JSONResponse:
    """Create or replace the tenant's override of this key; it is in effect at once in this process and within
    seconds in every other."""
    key = service.check_key(event_type, channel, locale)
    entry, created = await service.put_template(
        rt, principal, key, subject=body.subject, body=body.body, variables=body.variables
    )
    return JSONResponse(_out(entry), status_code=201 if created else 200)


@router.delete(KEY, status_code=204)
async def delete_template(
    event_type: EventTypePath,
    channel: ChannelPath,
    locale: LocalePath,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
) -> Response:
    """Remove the tenant's override of exactly this key: Herald's default is in effect again."""
    key = service.check_key(event_type, channel, locale)
    await service.delete_template(rt, principal, key)
    return Response(status_code=204)


@router.post(KEY + "/render", response_model=RenderedOut)
async def render_template(
    event_type: EventTypePath,
    channel: ChannelPath,
    locale: LocalePath,
    body: TemplateRender,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Preview the template in effect with ``variables`` (sample values for the rest); sends nothing."""
    key = service.check_key(event_type, channel, locale)
    found = await resolve_template(rt, principal.tenant_id, key.event_type, key.channel, key.locale)
    known = service.event_type(key.event_type)
    sample = known.sample if known else {}
    rendered = render_resolved(found, {**sample, **body.variables}, timezone=body.timezone)
    return RenderedOut(
        subject=rendered.subject, body=rendered.body, locale=found.locale, source=found.source
    ).model_dump(mode="json")
