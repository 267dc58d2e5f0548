"""Setup pages that are not one object's list and form: the first message, and the template library.

- ``/manage/first-message``: the first-run path's last step (:mod:`herald.web.dashboard.firstrun`): a short
  form of the API's own send request (agent, platform, recipient, text), POSTed to
  ``/api/v1/messaging/proactive/send`` in process as the signed-in key, then the answer with a link to where
  it went (the dev inbox, or the approvals queue when the agent's level holds it).
- ``/manage/templates``: Herald's default texts and the tenant's overrides beside them, key by key
  (event type, channel, locale): save an override (``PUT``), remove it (``DELETE``: the default is back) and
  preview what is in effect (``POST .../render``). Every change goes through the templates API, so it is
  validated, audited and tenant-scoped exactly as there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from herald.core.errors import NotFound
from herald.web.api.routes.templates import TemplatePut
from herald.web.api.schemas import SendRequest
from herald.web.dashboard import api, forms
from herald.web.dashboard.routes import PageRoute, User, done, redirect, render
from herald.web.dashboard.session import DashboardUser, checked_form

# As in manage: a form shown again with its errors answers 200 (browsers log a 4xx page load as a console error).
router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/manage")

SEND_PATH = "/api/v1/messaging/proactive/send"
TEMPLATES_PATH = "/api/v1/templates"
FIRST_MESSAGE = {
    "platform": "slack",
    "recipient_id": "C0FIRST",
    "content": "Hello from Herald: my first message.",
}


# -- the first message ----------------------------------------------------------------------------------------


async def _send_fields(request: Request, user: DashboardUser) -> tuple[forms.Field, ...]:
    """The send request's fields a first message needs; the agent chosen from the tenant's own."""
    fields = forms.fields_of(SendRequest, only=("agent_id", "platform", "recipient_id", "subject", "content"))
    answer = await api.call(request, user.principal, "GET", "/api/v1/agents", query={"limit": 200})
    items = answer.body.get("items", []) if answer.ok and isinstance(answer.body, dict) else []
    agents = tuple(str(a["id"]) for a in items if isinstance(a, dict) and "id" in a)
    if not agents:
        return fields
    return tuple(
        forms.Field(f.name, f.label, "select", True, f.help, agents) if f.name == "agent_id" else f
        for f in fields
    )


async def _first_message_page(
    request: Request, user: DashboardUser, fields: tuple[forms.Field, ...], state: forms.FormState,
    status: int = 200,
) -> Response:  # fmt: skip
    return await render(
        request, user, "first_message.html", active="manage", fields=fields, state=state, status=status,
        has_agents=any(f.name == "agent_id" and f.kind == "select" for f in fields),
    )  # fmt: skip


@router.get("/first-message")
async def first_message_form(request: Request, user: User) -> Response:
    fields = await _send_fields(request, user)
    return await _first_message_page(request, user, fields, forms.FormState(values=dict(FIRST_MESSAGE)))


@router.post("/first-message")
async def first_message(request: Request, user: User) -> Response:
    form = await checked_form(request, user)
    fields = await _send_fields(request, user)
    body, state = forms.body_from(fields, form)
    if not state.failed:
        answer = await api.call(request, user.principal, "POST", SEND_PATH, body)
        if answer.ok and isinstance(answer.body, dict):
            return await render(
                request, user, "first_message_sent.html", active="manage", message=answer.body
            )
        _refused(fields, answer, state)
    return await _first_message_page(request, user, fields, state)


def _refused(fields: tuple[forms.Field, ...], answer: api.Answer, state: forms.FormState) -> None:
    if answer.status == 422 and answer.field_errors:
        forms.place_errors(fields, answer.field_errors, state)
    else:
        state.add_error("", answer.detail)


# -- templates ------------------------------------------------------------------------------------------------

TEMPLATE_FIELDS = forms.fields_of(TemplatePut)
VARIABLES = forms.Field(
    "variables", "Variables", "pairs", help="Values for the preview; the event type's samples fill the rest."
)


def _key_path(event_type: str, channel: str, locale: str) -> str:
    return "/".join(quote(part, safe="") for part in (event_type, channel, locale))


def _items(answer: api.Answer) -> list[dict[str, Any]]:
    items = answer.body.get("items") if answer.ok and isinstance(answer.body, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


@router.get("/templates")
async def templates_list(request: Request, user: User, event_type: str | None = None) -> Response:
    """The event types Herald ships texts for, and every template in effect for the tenant."""
    principal = user.principal
    events = _items(await api.call(request, principal, "GET", f"{TEMPLATES_PATH}/event-types"))
    answer = await api.call(
        request, principal, "GET", TEMPLATES_PATH, query={"limit": 200, "event_type": event_type or None}
    )
    if not answer.ok:
        return await render(
            request, user, "error.html", status=answer.status, title="Not listed", detail=answer.detail
        )
    return await render(
        request, user, "templates_list.html", active="manage", events=events, rows=_items(answer),
        event_type=event_type or "",
    )  # fmt: skip


@router.get("/templates/open")
async def template_open(
    request: Request, user: User, event_type: str = "", channel: str = "", locale: str = ""
) -> Response:
    """The "open a key" form's answer: that key's page (a key with no template yet opens an empty form)."""
    parts = (event_type.strip(), channel.strip(), locale.strip() or "en")
    if not parts[0] or not parts[1]:
        return done(request, "/manage/templates", "Give an event type and a channel.", "error")
    return redirect(f"/manage/templates/{_key_path(*parts)}")


async def _template_page(
    request: Request, user: DashboardUser, key: tuple[str, str, str], *, state: forms.FormState | None = None,
    rendered: dict[str, Any] | None = None, render_state: forms.FormState | None = None, status: int = 200,
) -> Response:  # fmt: skip
    """One key: what is in effect, Herald's default beside it, the override form and the preview."""
    answer = await api.call(request, user.principal, "GET", f"{TEMPLATES_PATH}/{_key_path(*key)}")
    if not answer.ok and answer.status != 404:
        return await render(
            request, user, "error.html", status=answer.status, title="No such template", detail=answer.detail
        )
    entry = answer.body if answer.ok and isinstance(answer.body, dict) else None
    exact = entry is not None and entry.get("locale") == key[2]
    override = entry is not None and exact and entry.get("source") == "tenant"
    if state is None:
        # Start from the text in effect; an override's own declared names only when it is the override.
        start = {k: v for k, v in (entry or {}).items() if override or k != "variables"}
        state = forms.state_from(TEMPLATE_FIELDS, start)
    return await render(
        request, user, "template_edit.html", active="manage", key=key, path=_key_path(*key), entry=entry,
        override=override, fields=TEMPLATE_FIELDS, state=state, rendered=rendered,
        variables_field=VARIABLES, render_state=render_state or forms.FormState(), status=status,
    )  # fmt: skip


@router.get("/templates/{event_type}/{channel}/{locale}")
async def template_page(request: Request, user: User, event_type: str, channel: str, locale: str) -> Response:
    return await _template_page(request, user, (event_type, channel, locale))


@router.post("/templates/{event_type}/{channel}/{locale}")
async def template_save(request: Request, user: User, event_type: str, channel: str, locale: str) -> Response:
    """Save the tenant's override of this key (``PUT``): created or replaced."""
    form = await checked_form(request, user)
    key = (event_type, channel, locale)
    body, state = forms.body_from(TEMPLATE_FIELDS, form)
    if not state.failed:
        answer = await api.call(request, user.principal, "PUT", f"{TEMPLATES_PATH}/{_key_path(*key)}", body)
        if answer.ok:
            return done(
                request, f"/manage/templates/{_key_path(*key)}", f"Saved the override of {'/'.join(key)}."
            )
        _refused(TEMPLATE_FIELDS, answer, state)
    return await _template_page(request, user, key, state=state)


@router.post("/templates/{event_type}/{channel}/{locale}/delete")
async def template_delete(
    request: Request, user: User, event_type: str, channel: str, locale: str
) -> Response:
    """Remove the tenant's override (``DELETE``): Herald's default is in effect again."""
    await checked_form(request, user)
    path = _key_path(event_type, channel, locale)
    answer = await api.call(request, user.principal, "DELETE", f"{TEMPLATES_PATH}/{path}")
    if answer.status == 404:
        raise NotFound(answer.detail)
    if not answer.ok:
        return done(request, f"/manage/templates/{path}", f"Not removed: {answer.detail}", "error")
    return done(request, f"/manage/templates/{path}", "Removed the override: Herald's default is in effect.")


@router.post("/templates/{event_type}/{channel}/{locale}/render")
async def template_render(
    request: Request, user: User, event_type: str, channel: str, locale: str
) -> Response:
    """Preview the template in effect with the given variables (``POST .../render``); sends nothing."""
    form = await checked_form(request, user)
    key = (event_type, channel, locale)
    body, render_state = forms.body_from((VARIABLES,), form)
    rendered = None
    if not render_state.failed:
        answer = await api.call(
            request, user.principal, "POST", f"{TEMPLATES_PATH}/{_key_path(*key)}/render",
            {"variables": body.get("variables", {})},
        )  # fmt: skip
        if answer.ok and isinstance(answer.body, dict):
            rendered = answer.body
        else:
            render_state.add_error("variables", answer.detail)
    return await _template_page(request, user, key, rendered=rendered, render_state=render_state)
