"""Channels from the dashboard: a credentials form per provider, and a "Send test" on each channel.

A channel's credentials differ by provider, so its form is built in two steps, both plain HTML: choose the
provider (a GET, ``/manage/channels/new?provider=slack``), then fill the form built from that provider's own
:attr:`~herald.providers.base.Channel.credentials_model` (the model the API validates them with, so there is
one declaration of what a provider needs). A credential the provider keeps out of ``repr`` (``repr=False``:
tokens, secrets, URLs carrying a token) is write-only here: a password input, never filled back, and the lists
show only the names of the credentials that are set (the API's ``credentials_set``).

Everything goes through the API in this process as the signed-in key (:mod:`herald.web.dashboard.api`):
``POST /api/v1/channels`` to create, ``PATCH /api/v1/channels/{id}`` to edit, ``POST /api/v1/channels/{id}/test``
to test. The edit form is the channel's provider's form without the platform: every credential starts blank and a
blank one keeps what is stored (the API merges what is sent over the stored credentials), so one token is rotated
without retyping the others, and no credential is ever filled back into a page.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from herald.core.errors import NotFound
from herald.core.platforms import PLATFORMS
from herald.providers import REGISTRY, provider_class
from herald.providers.base import Channel
from herald.web.dashboard import api, forms
from herald.web.dashboard.manage import BY_KEY, LIST_SIZE, Resource, _items, _refused, cell
from herald.web.dashboard.routes import PageRoute, User, done, render, runtime
from herald.web.dashboard.session import DashboardUser, checked_form

KEY = "channels"
TEST_CONTENT = "Herald test message"

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix=f"/manage/{KEY}")


def _resource() -> Resource:
    return BY_KEY[KEY]


def offered(request: Request) -> list[type[Channel]]:
    """The providers a channel can be created with here (the dev inbox only in development, as the API says)."""
    development = runtime(request).settings.is_development
    adapters = (REGISTRY.get(name) for name in REGISTRY.names())
    return [p.adapter for p in adapters if p is not None and (development or p.name != "devinbox")]


def platforms_of(adapter: type[Channel]) -> tuple[str, ...]:
    return tuple(sorted(PLATFORMS)) if "*" in adapter.platforms else tuple(sorted(adapter.platforms))


def secret_overrides(adapter: type[Channel]) -> dict[str, str]:
    """Credentials the provider keeps out of ``repr`` are secrets: write-only password inputs."""
    model = adapter.credentials_model
    return {f"credentials.{name}": "password" for name, info in model.model_fields.items() if not info.repr}


def credentials_field(adapter: type[Channel]) -> forms.Field | None:
    """The provider's credentials as one fieldset (None when it needs none, like the dev inbox)."""
    model = adapter.credentials_model
    overrides = secret_overrides(adapter)
    children = tuple(
        forms.field_for(f"credentials.{name}", info, depth=1, overrides=overrides)
        for name, info in model.model_fields.items()
    )
    if not children:
        return None
    return forms.Field(
        name="credentials", label="Credentials", kind="group", required=any(c.required for c in children),
        help=f"What {adapter.provider} needs. Secrets are write-only: never shown again.", children=children,
    )  # fmt: skip


def edit_fields_for(adapter: type[Channel]) -> tuple[forms.Field, ...]:
    """The edit form: the channel's own fields (from ChannelPatch), then its provider's credentials, none required:
    what is left blank is kept."""
    credentials = credentials_field(adapter)
    common = _resource().edit_fields()
    if credentials is None:
        return common
    kept = replace(
        credentials, required=False, children=tuple(replace(c, required=False) for c in credentials.children),
        help=f"What {adapter.provider} needs. Only what you type changes: blank keeps the stored value "
        "(none is ever shown again).",
    )  # fmt: skip
    return (*common, kept)


def fields_for(adapter: type[Channel]) -> tuple[forms.Field, ...]:
    """The whole form for one provider: its platforms, the channel's own fields, then its credentials."""
    choices = platforms_of(adapter)
    platform = forms.Field(
        name="platform", label="Platform", kind="select", required=True, choices=choices,
        default=choices[0] if len(choices) == 1 else None,
        help=f"{adapter.provider} serves {'any platform' if '*' in adapter.platforms else ', '.join(choices)}.",
    )  # fmt: skip
    credentials = credentials_field(adapter)
    common = _resource().create_fields()  # name, base_url, is_default, costs and rates, from ChannelCreate
    return (platform, *common, *((credentials,) if credentials else ()))


def chosen(request: Request, name: str) -> type[Channel]:
    adapter = next((a for a in offered(request) if a.provider == name), None)
    if adapter is None:
        raise NotFound(f"no provider {name!r} in this Herald")
    return adapter


async def _page(
    request: Request, user: DashboardUser, adapter: type[Channel] | None, state: forms.FormState | None = None
) -> Response:
    res = _resource()
    fields = fields_for(adapter) if adapter else ()
    return await render(
        request, user, res.template, active="manage", res=res, fields=fields,
        state=state or forms.defaults(fields), action=f"/manage/{KEY}/new", object_id=None,
        provider=adapter, providers=offered(request), platforms_of=platforms_of,
    )  # fmt: skip


@router.get("")
async def list_page(request: Request, user: User) -> Response:
    """The channels, with what each needs set (names only) and a "Send test" form each."""
    res = _resource()
    answer = await api.call(request, user.principal, "GET", res.collection, query={"limit": LIST_SIZE})
    if not answer.ok:
        return await render(
            request, user, "error.html", status=answer.status, title="Not listed", detail=answer.detail
        )
    return await render(
        request, user, "manage_channels.html", active="manage", res=res, rows=_items(answer.body), cell=cell,
        test_content=TEST_CONTENT,
    )  # fmt: skip


@router.get("/new")
async def new_form(request: Request, user: User, provider: str | None = None) -> Response:
    """Without ``provider``: choose one. With it: that provider's form."""
    return await _page(request, user, chosen(request, provider) if provider else None)


@router.post("/new")
async def create(request: Request, user: User) -> Response:
    form = await checked_form(request, user)
    adapter = chosen(request, form.get("provider"))
    fields = fields_for(adapter)
    body, state = forms.body_from(fields, form)
    body["provider"] = adapter.provider
    if not state.failed:
        answer = await api.call(request, user.principal, "POST", _resource().collection, body)
        if answer.ok:
            created = answer.body if isinstance(answer.body, dict) else {}
            name = str(created.get("name") or created.get("id") or "channel")
            return done(request, f"/manage/{KEY}", f"Created channel {name}. Send it a test below.")
        _refused(fields, answer, state)
    return await _page(request, user, adapter, state)  # 200: the page says what is wrong, beside each field


def _item(channel_id: str) -> str:
    return _resource().item_path(channel_id)


def _edit_action(channel_id: str) -> str:
    return f"/manage/{KEY}/{quote(channel_id, safe='')}/edit"


async def _edit_page(
    request: Request, user: DashboardUser, adapter: type[Channel], channel_id: str, state: forms.FormState
) -> Response:
    return await render(
        request, user, _resource().template, active="manage", res=_resource(), fields=edit_fields_for(adapter),
        state=state, action=_edit_action(channel_id), object_id=channel_id, provider=adapter,
        providers=offered(request), platforms_of=platforms_of,
    )  # fmt: skip


async def _adapter_of(request: Request, user: DashboardUser, channel_id: str) -> tuple[type[Channel], Any]:
    """The channel as the API answers it (this tenant's only: another's is a 404), and its provider's adapter."""
    answer = await api.call(request, user.principal, "GET", _item(channel_id))
    body = answer.body if isinstance(answer.body, dict) else {}
    adapter = provider_class(str(body.get("provider") or "")) if answer.ok else None
    if adapter is None:
        raise NotFound(f"no channel {channel_id}")
    return adapter, body


@router.get("/{channel_id}/edit")
async def edit_form(request: Request, user: User, channel_id: str) -> Response:
    """The channel's fields filled in, its credentials blank (kept unless typed)."""
    adapter, body = await _adapter_of(request, user, channel_id)
    state = forms.state_from(edit_fields_for(adapter), body)
    return await _edit_page(request, user, adapter, channel_id, state)


@router.post("/{channel_id}/edit")
async def update(request: Request, user: User, channel_id: str) -> Response:
    """``PATCH /api/v1/channels/{id}`` with what was typed: blank credentials are not sent, so they stay."""
    form = await checked_form(request, user)
    adapter, _ = await _adapter_of(request, user, channel_id)
    fields = edit_fields_for(adapter)
    body, state = forms.body_from(fields, form, partial=True)
    if not state.failed:
        answer = await api.call(request, user.principal, "PATCH", _item(channel_id), body)
        if answer.status == 404:
            raise NotFound(f"no channel {channel_id}")
        if answer.ok:
            return done(request, f"/manage/{KEY}", f"Saved channel {channel_id}.")
        _refused(fields, answer, state)
    return await _edit_page(request, user, adapter, channel_id, state)  # 200: errors beside each field


def test_notice(result: dict[str, Any]) -> tuple[str, str]:
    """A test's result as a notice: delivered (with the provider's id), or the provider's own error."""
    provider = result.get("provider") or "the provider"
    if result.get("ok"):
        got = result.get("provider_message_id")
        return f"Test delivered by {provider}" + (f" (message id {got})." if got else "."), "info"
    again = " It may work if tried again." if result.get("retryable") else ""
    return (
        f"Test not delivered: {provider} answered: {result.get('error') or 'no reason given'}.{again}",
        "error",
    )


@router.post("/{channel_id}/test")
async def send_test(request: Request, user: User, channel_id: str) -> Response:
    """Send one test message through the channel now (``POST /api/v1/channels/{id}/test``)."""
    form = await checked_form(request, user)
    body: dict[str, Any] = {"recipient_id": form.get("recipient_id").strip()}
    content = form.get("content").strip()
    if content:
        body["content"] = content
    path = f"/api/v1/channels/{quote(channel_id, safe='')}/test"
    answer = await api.call(request, user.principal, "POST", path, body)
    if answer.status == 404:
        raise NotFound(f"no channel {channel_id}")
    if not answer.ok:
        reasons = "; ".join(f"{where}: {message}" for where, message in answer.field_errors) or answer.detail
        return done(request, f"/manage/{KEY}", f"Test not sent: {reasons}", "error")
    text, kind = test_notice(answer.body if isinstance(answer.body, dict) else {})
    return done(request, f"/manage/{KEY}", text, kind)
