"""Create, edit and remove what the API manages, from the dashboard: one generic set of pages, one registry.

Each managed object is one :class:`Resource` line in :data:`RESOURCES`: where the API keeps it, which request
models create and change it, which columns its list shows. The pages (``/manage/<key>`` to list,
``.../new``, ``.../<id>/edit``, ``.../<id>/delete``) build their forms from those models
(:mod:`herald.web.dashboard.forms`) and send what is posted through the API itself, in this process, as the
signed-in key (:mod:`herald.web.dashboard.api`): same validation, same messages, same governance, same audit.
A secret the API shows once (a webhook's signing secret, an agent's callback secret) is shown once here too,
on the answer to the form, and never again.

Adding an object is one :class:`Resource` line; a page that needs more (a channel's per-provider credentials,
a schedule's live preview) supplies its own template through :attr:`Resource.template`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from herald.core.errors import NotFound
from herald.web.api import schemas
from herald.web.api.routes.campaigns import CampaignCreate, CampaignPatch
from herald.web.api.routes.conversations import RuleCreate
from herald.web.api.routes.datasources import DataSourceCreate, DataSourcePatch
from herald.web.api.routes.digest_rules import DigestRuleCreate, DigestRulePatch
from herald.web.api.routes.email_forms import EmailFormCreate, EmailFormPatch
from herald.web.api.routes.events import SubscriptionCreate
from herald.web.api.routes.monitors import ConditionCreate, TaskMonitorPatch
from herald.web.api.routes.schedules import ScheduleCreate, ScheduleRuleChange
from herald.web.api.routes.triggers import TriggerCreate, WebhookCreate
from herald.web.dashboard import api, forms, previews
from herald.web.dashboard.routes import PageRoute, User, done, render
from herald.web.dashboard.session import DashboardUser, checked_form

LIST_SIZE = 200
# Keys of a create answer the API shows only once: shown on the answer page, never stored by the dashboard.
SHOWN_ONCE = ("secret", "callback_secret", "signing_secret", "key", "api_key", "token")
# The submit button that asks for a preview (a schedule's next runs, a monitor's test) instead of saving.
PREVIEW_FIELD = "_preview"

# (request, user, fields, API body, form state) -> what the form shows before saving; errors go into the state.
PreviewHook = Callable[
    [Request, DashboardUser, tuple[forms.Field, ...], dict[str, Any], forms.FormState],
    Awaitable[previews.Preview | None],
]
# (request, user) -> more for the form's own template (a monitor's presets).
ContextHook = Callable[[Request, DashboardUser], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Resource:
    """One kind of object the API manages, as the dashboard lists, creates, edits and removes it."""

    key: str  # the URL segment: /manage/<key>
    title: str  # "Contacts"
    singular: str  # "contact"
    collection: str  # the API's list and create path
    create: type[BaseModel] | None
    edit: type[BaseModel] | None = None  # PATCH <item>
    delete: bool = True
    columns: tuple[str, ...] = ("id", "name")
    item: str = "{collection}/{id}"
    create_path: str = ""  # when creating is not POST <collection>
    list_path: str = ""  # when listing is not GET <collection>
    intro: str = ""
    exclude: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    page: str = ""  # a page of its own that shows these objects (the list links there too)
    template: str = "manage_form.html"
    preview: PreviewHook | None = None  # a button that shows what would happen, without saving
    preview_label: str = "Preview"
    context: ContextHook | None = None
    after_save: str = ""  # where a saved object's page is ("{id}"), instead of the list

    def saved_page(self, object_id: str) -> str:
        if not self.after_save or not object_id:
            return f"/manage/{self.key}"
        return self.after_save.format(id=quote(object_id, safe=""))

    def item_path(self, object_id: str) -> str:
        return self.item.format(collection=self.collection, id=quote(object_id, safe=""))

    def create_fields(self) -> tuple[forms.Field, ...]:
        assert self.create is not None
        return forms.fields_of(self.create, exclude=self.exclude, overrides=self.overrides)

    def edit_fields(self) -> tuple[forms.Field, ...]:
        assert self.edit is not None
        return forms.fields_of(self.edit, exclude=self.exclude, overrides=self.overrides)


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "agents",
        "Agents",
        "agent",
        "/api/v1/agents",
        schemas.AgentCreate,
        schemas.AgentPatch,
        delete=False,
        columns=("id", "name", "kind", "maturity_level", "callback_url"),
        page="/agents",
        intro="Who sends: each agent's maturity level decides what happens to its messages. Levels need an "
        "admin key.",
    ),
    Resource(
        "channels",
        "Channels",
        "channel",
        "/api/v1/channels",
        schemas.ChannelCreate,
        schemas.ChannelPatch,
        columns=("id", "name", "platform", "provider", "credentials_set", "is_default"),
        exclude=("platform", "provider", "credentials"),  # per provider: herald.web.dashboard.channels
        page="/interfaces",
        template="manage_channel_form.html",
        intro="Where messages go out: a provider's credentials (write-only, rotated one at a time by editing), "
        "tested with one message.",
    ),
    Resource(
        "contacts",
        "Contacts",
        "contact",
        "/api/v1/contacts",
        schemas.ContactCreate,
        schemas.ContactPatch,
        delete=False,
        columns=("id", "name", "addresses", "timezone", "channel_order"),
        intro="People and their addresses (one 'platform: address' per line), quiet hours and channel order.",
    ),
    Resource(
        "routing-rules",
        "Routing rules",
        "routing rule",
        "/api/v1/routing-rules",
        RuleCreate,
        columns=("id", "name", "priority", "channel_id"),
        intro="Which channel carries which messages, tried in order.",
    ),
    Resource(
        "event-subscriptions",
        "Event subscriptions",
        "event subscription",
        "/api/v1/event-subscriptions",
        SubscriptionCreate,
        columns=("id", "url", "event_types", "active"),
        intro="Herald's events POSTed, signed, to your URL.",
    ),
    Resource(
        "approvers",
        "Approvers",
        "approver",
        "/api/v1/approvers",
        schemas.ApproverCreate,
        schemas.ApproverPatch,
        columns=("id", "name", "addresses", "active"),
        intro="The people asked to approve held messages, and where they are asked.",
    ),
    Resource(
        "approval-policies",
        "Approval policies",
        "approval policy",
        "/api/v1/approval-policies",
        schemas.ApprovalPolicyCreate,
        schemas.ApprovalPolicyPatch,
        columns=("id", "name", "agent_id", "approvers", "quorum"),
        intro="Which approvers a held message goes to, how many must agree, and when it escalates.",
    ),
    Resource(
        "digest-rules",
        "Digest rules",
        "digest rule",
        "/api/v1/digest-rules",
        DigestRuleCreate,
        DigestRulePatch,
        columns=("id", "name", "agent_id", "platform", "window_seconds", "max_messages"),
        intro="Messages held for a window, then sent as one.",
    ),
    Resource(
        "data-sources",
        "Data sources",
        "data source",
        "/api/v1/data-sources",
        DataSourceCreate,
        DataSourcePatch,
        columns=("id", "name", "kind"),
        overrides={"url": "password"},
        intro="Your own databases, read by campaigns and monitors (credentials are write-only).",
    ),
    Resource(
        "email-forms",
        "Email forms",
        "email form",
        "/api/v1/email-forms",
        EmailFormCreate,
        EmailFormPatch,
        columns=("id", "name", "channel_id"),
        intro="Contact forms arriving by email, read for their intent and answered.",
    ),
    Resource(
        "triggers",
        "Triggers",
        "trigger",
        "/api/proactive/triggers",
        TriggerCreate,
        columns=("id", "name", "agent_id", "event_type"),
        intro="Events that wake an agent.",
    ),
    Resource(
        "webhooks",
        "Webhook endpoints",
        "webhook endpoint",
        "/api/proactive/webhooks",
        WebhookCreate,
        columns=("id", "name", "url_path", "agent_id"),
        intro="URLs that outside systems call, signed with a secret shown once.",
    ),
    Resource(
        "schedules",
        "Schedules",
        "schedule",
        "/api/v1/messaging/schedule",
        ScheduleCreate,
        ScheduleRuleChange,
        columns=("id", "name", "agent_id", "description", "timezone", "next_run", "status"),
        create_path="/api/v1/messaging/schedule/create",
        list_path="/api/v1/messaging/schedule/list",
        exclude=("scheduled_for",),
        page="/schedules",
        template="manage_schedule.html",
        preview=previews.schedule,
        intro="Messages sent on a rule (cron or plain words, in a time zone) or once at a time. Editing changes "
        "the rule; removing cancels.",
    ),
    Resource(
        "monitors",
        "Monitors",
        "monitor",
        "/api/proactive/monitors",
        ConditionCreate,
        TaskMonitorPatch,
        columns=("id", "name", "condition", "state", "check_interval_seconds", "status"),
        create_path="/api/v1/monitoring/condition/create",
        list_path="/api/v1/monitoring/condition/list",
        exclude=("condition",),
        page="/monitors",
        template="manage_monitor.html",
        preview=previews.monitor_test,
        preview_label="Test now",
        context=previews.monitor_presets,
        intro="Conditions checked on an interval, alerting when they hold: start from a preset or write one. "
        "A condition is not changed once created: create another.",
    ),
    Resource(
        "campaigns",
        "Campaigns",
        "campaign",
        "/api/v1/campaigns",
        CampaignCreate,
        CampaignPatch,
        columns=("id", "name", "schedule", "event_type", "status"),
        exclude=("compose",),
        page="/campaigns",
        after_save="/campaigns/{id}?preview=1",
        intro="Lifecycle messages over your own database on a schedule: after saving, the campaign's page "
        "previews its audience and messages (nothing is sent). AI composing is set through the API.",
    ),
)
BY_KEY = {r.key: r for r in RESOURCES}

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/manage")


def resource(key: str) -> Resource:
    found = BY_KEY.get(key)
    if found is None:
        raise NotFound("no such page")
    return found


def _items(body: Any) -> list[dict[str, Any]]:
    """A list answer's objects, whether paged (``items``) or a bare list."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return [i for i in body["items"] if isinstance(i, dict)]
    return [i for i in body if isinstance(i, dict)] if isinstance(body, list) else []


def cell(value: Any) -> str:
    """A value as a list's cell shows it."""
    if value is None or value in ("", [], {}):
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# A form shown again with its errors answers 200, not 422: browsers log every 4xx page load as a console error,
# and the page itself says what is wrong, beside each field.
async def _form_page(
    request: Request, user: DashboardUser, res: Resource, fields: tuple[forms.Field, ...],
    state: forms.FormState, *, action: str, object_id: str | None = None, status: int = 200,
    preview: previews.Preview | None = None,
) -> Response:  # fmt: skip
    extra = await res.context(request, user) if res.context is not None else {}
    return await render(
        request, user, res.template, active="manage", res=res, fields=fields, state=state, action=action,
        object_id=object_id, status=status, preview=preview, preview_field=PREVIEW_FIELD, **extra,
    )  # fmt: skip


async def _previewed(
    request: Request, user: DashboardUser, res: Resource, fields: tuple[forms.Field, ...],
    body: dict[str, Any], state: forms.FormState, *, action: str, object_id: str | None = None,
) -> Response:  # fmt: skip
    """The form again, as posted, with what it would do (the "Preview" or "Test now" button): nothing saved."""
    assert res.preview is not None
    preview = None if state.failed else await res.preview(request, user, fields, body, state)
    return await _form_page(
        request, user, res, fields, state, action=action, object_id=object_id, preview=preview
    )


@router.get("")
async def setup(request: Request, user: User) -> Response:
    return await render(request, user, "manage_index.html", active="manage", resources=RESOURCES)


@router.get("/{key}")
async def list_page(request: Request, user: User, key: str) -> Response:
    res = resource(key)
    answer = await api.call(
        request, user.principal, "GET", res.list_path or res.collection, query={"limit": LIST_SIZE}
    )
    if not answer.ok:
        return await render(
            request, user, "error.html", status=answer.status, title="Not listed", detail=answer.detail
        )
    return await render(
        request, user, "manage_list.html", active="manage", res=res, rows=_items(answer.body), cell=cell
    )


@router.get("/{key}/new")
async def new_form(request: Request, user: User, key: str) -> Response:
    res = resource(key)
    if res.create is None:
        raise NotFound("these are not created from the dashboard")
    fields = res.create_fields()
    return await _form_page(request, user, res, fields, forms.defaults(fields), action=f"/manage/{key}/new")


@router.post("/{key}/new")
async def create(request: Request, user: User, key: str) -> Response:
    res = resource(key)
    if res.create is None:
        raise NotFound("these are not created from the dashboard")
    form = await checked_form(request, user)
    fields = res.create_fields()
    body, state = forms.body_from(fields, form)
    if res.preview is not None and form.get(PREVIEW_FIELD):
        return await _previewed(request, user, res, fields, body, state, action=f"/manage/{key}/new")
    if not state.failed:
        answer = await api.call(request, user.principal, "POST", res.create_path or res.collection, body)
        if answer.ok:
            return await _created(request, user, res, answer)
        _refused(fields, answer, state)
    return await _form_page(request, user, res, fields, state, action=f"/manage/{key}/new")


def _refused(fields: tuple[forms.Field, ...], answer: api.Answer, state: forms.FormState) -> None:
    errors = answer.field_errors
    if errors and answer.status == 422:
        forms.place_errors(fields, errors, state)
    else:
        state.add_error("", answer.detail)


async def _created(request: Request, user: DashboardUser, res: Resource, answer: api.Answer) -> Response:
    """Back to the list with a notice, or, when the answer holds a secret shown once, a page showing it."""
    body = answer.body if isinstance(answer.body, dict) else {}
    name = str(body.get("name") or body.get("id") or res.singular)
    secrets = {k: str(v) for k, v in body.items() if k in SHOWN_ONCE and isinstance(v, str) and v}
    if secrets:
        return await render(
            request,
            user,
            "manage_created.html",
            active="manage",
            res=res,
            obj=body,
            secrets=secrets,
            name=name,
        )
    return done(request, res.saved_page(str(body.get("id") or "")), f"Created {res.singular} {name}.")


@router.get("/{key}/{object_id}/edit")
async def edit_form(request: Request, user: User, key: str, object_id: str) -> Response:
    res = resource(key)
    if res.edit is None:
        raise NotFound(f"a {res.singular} is not changed once created: remove it and create another")
    answer = await api.call(request, user.principal, "GET", res.item_path(object_id))
    if not answer.ok:
        raise NotFound(f"no {res.singular} {object_id}")
    fields = res.edit_fields()
    state = forms.state_from(fields, answer.body if isinstance(answer.body, dict) else {})
    action = f"/manage/{key}/{quote(object_id, safe='')}/edit"
    return await _form_page(request, user, res, fields, state, action=action, object_id=object_id)


@router.post("/{key}/{object_id}/edit")
async def update(request: Request, user: User, key: str, object_id: str) -> Response:
    res = resource(key)
    if res.edit is None:
        raise NotFound(f"a {res.singular} is not changed once created")
    form = await checked_form(request, user)
    fields = res.edit_fields()
    body, state = forms.body_from(fields, form, partial=True)
    if res.preview is not None and form.get(PREVIEW_FIELD):
        return await _edit_previewed(request, user, res, fields, body, state, object_id)
    if not state.failed:
        answer = await api.call(request, user.principal, "PATCH", res.item_path(object_id), body)
        if answer.status == 404:
            raise NotFound(f"no {res.singular} {object_id}")
        if answer.ok:
            return done(request, res.saved_page(object_id), f"Saved {res.singular} {object_id}.")
        _refused(fields, answer, state)
    action = f"/manage/{key}/{quote(object_id, safe='')}/edit"
    return await _form_page(request, user, res, fields, state, action=action, object_id=object_id)


async def _edit_previewed(
    request: Request, user: DashboardUser, res: Resource, fields: tuple[forms.Field, ...],
    body: dict[str, Any], state: forms.FormState, object_id: str,
) -> Response:  # fmt: skip
    """An edit form's preview, for an object of this tenant only (another's is a 404, as its edit is)."""
    if not (await api.call(request, user.principal, "GET", res.item_path(object_id))).ok:
        raise NotFound(f"no {res.singular} {object_id}")
    action = f"/manage/{res.key}/{quote(object_id, safe='')}/edit"
    return await _previewed(request, user, res, fields, body, state, action=action, object_id=object_id)


@router.get("/{key}/{object_id}/delete")
async def delete_form(request: Request, user: User, key: str, object_id: str) -> Response:
    res = resource(key)
    if not res.delete:
        raise NotFound(f"a {res.singular} is not removed from the dashboard")
    return await render(request, user, "manage_delete.html", active="manage", res=res, object_id=object_id)


@router.post("/{key}/{object_id}/delete")
async def delete(request: Request, user: User, key: str, object_id: str) -> Response:
    res = resource(key)
    if not res.delete:
        raise NotFound(f"a {res.singular} is not removed from the dashboard")
    await checked_form(request, user)
    answer = await api.call(request, user.principal, "DELETE", res.item_path(object_id))
    if answer.status == 404:
        raise NotFound(f"no {res.singular} {object_id}")
    if not answer.ok:
        return done(request, f"/manage/{key}", f"Not removed: {answer.detail}", "error")
    return done(request, f"/manage/{key}", f"Removed {res.singular} {object_id}.")


# -- schedules' live preview, monitors' presets ----------------------------------------------------------------


@router.get("/schedules/preview")
async def schedule_preview(
    request: Request,
    user: User,
    cron_expression: str = "",
    natural_language_schedule: str = "",
    timezone: str = "UTC",
) -> Response:
    """The live preview ``dashboard.js`` asks for while a rule is typed: the next five runs in the chosen zone
    (``ok: true``), or what is wrong and with which field (``ok: false``). Always 200: a rule half typed is not an
    error of the page, and browsers log every 4xx fetch as a console error. Changes nothing, so a GET."""
    body = {
        "cron_expression": cron_expression[:200], "natural_language_schedule": natural_language_schedule[:500],
        "timezone": timezone[:64],
    }  # fmt: skip
    state = forms.FormState()
    preview = await previews.schedule(request, user, BY_KEY["schedules"].create_fields(), body, state)
    if state.failed or preview is None:
        if not state.failed:
            state.add_error("", "a one-time schedule at a given time has nothing to preview")
        answer = JSONResponse({"ok": False, "errors": state.errors})
    else:
        answer = JSONResponse({"ok": True, **preview.as_json()})
    answer.headers.update({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return answer


@router.post("/monitors/preset")
async def apply_monitor_preset(request: Request, user: User) -> Response:
    """A monitor from one of the API's presets, in one step (the agent and name are optional)."""
    form = await checked_form(request, user)
    body = {k: form.get(k).strip() for k in ("preset_name", "name", "agent_id") if form.get(k).strip()}
    answer = await api.call(request, user.principal, "POST", "/api/v1/monitoring/presets/apply", body)
    if not answer.ok:
        problems = "; ".join(m for _, m in answer.field_errors) or answer.detail
        return done(request, "/manage/monitors/new", f"Not created: {problems}", "error")
    return await _created(request, user, BY_KEY["monitors"], answer)
