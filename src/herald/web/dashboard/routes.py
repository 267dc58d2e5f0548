"""The dashboard's pages: thin handlers that read through the services (or :mod:`.queries`) and render.

Every handler takes the signed-in :class:`~herald.web.dashboard.session.DashboardUser` and scopes every read and
write to its tenant; objects of other tenants are simply "not found". Changes are POSTed forms (CSRF-checked)
answered with a redirect and a one-shot notice, so a reload never repeats an action. The live parts of a page
poll a ``.../live`` endpoint that returns the same fragments the page was rendered with.

Adding a page (contacts, say) is a template, a route here and one :data:`NAV` entry.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from herald.admin import tenants as tenancy
from herald.core.errors import Forbidden, RequestError, ValidationFailed
from herald.core.intent import Priority
from herald.core.maturity import MaturityLevel
from herald.core.natural import describe_cron, next_runs
from herald.core.platforms import PLATFORMS
from herald.core.status import ALL_STATUSES, CANCELLABLE, Status
from herald.humans import decisions, outreach
from herald.pipeline import accept as messaging
from herald.pipeline import report
from herald.producers.campaigns import model as campaign_model
from herald.producers.campaigns import service as campaigning
from herald.producers.conversations import service as conversations
from herald.producers.email import mailbox as mailboxes
from herald.producers.monitors import conditions
from herald.producers.monitors import service as monitoring
from herald.producers.schedules import service as scheduling
from herald.runtime import Runtime
from herald.storage.models import Message, Monitor, MonitorAlert, Schedule
from herald.storage.types import utcnow
from herald.web.dashboard import charts, firstrun, queries
from herald.web.dashboard.session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    CsrfRefused,
    DashboardUser,
    SignInRequired,
    checked_form,
    checked_login_form,
    clear_flash,
    current_user,
    end_session,
    new_login_nonce,
    safe_next,
    set_flash,
    set_login_cookie,
    start_session,
    take_flash,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PATH = "/static"
PAGE_SIZE = 50
MAX_BATCH = 500

# Same-origin everything, no inline script or style, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    key: str
    path: str
    label: str


NAV: tuple[NavItem, ...] = (
    NavItem("overview", "/", "Overview"),
    NavItem("approvals", "/approvals", "Approvals"),
    NavItem("conversations", "/conversations", "Conversations"),
    NavItem("messages", "/messages", "Messages"),
    NavItem("schedules", "/schedules", "Schedules"),
    NavItem("campaigns", "/campaigns", "Campaigns"),
    NavItem("monitors", "/monitors", "Monitors"),
    NavItem("devinbox", "/devinbox", "Dev inbox"),
    NavItem("interfaces", "/interfaces", "Interfaces"),
    NavItem("agents", "/agents", "Agents"),
    NavItem("manage", "/manage", "Setup"),
)


# -- rendering ------------------------------------------------------------------------------------------------


def _static_versions() -> dict[str, str]:
    """A content hash per static file, so browsers cache them until they change."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in STATIC_DIR.iterdir()
        if path.is_file()
    }


_VERSIONS = _static_versions()


def static_url(name: str) -> str:
    return f"{STATIC_PATH}/{name}?v={_VERSIONS.get(name, '0')}"


def format_dt(value: datetime | str | None, timezone: str | None = None) -> Markup:
    """A time for people (UTC, or ``timezone``'s); ISO 8601 text (the services' dicts) is read first."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        value = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    if value is None:
        return Markup('<span class="muted">never</span>')
    shown = value.astimezone(ZoneInfo(timezone)) if timezone else value.astimezone(UTC)
    label = shown.strftime("%a %Y-%m-%d %H:%M %Z") if timezone else shown.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), label)


def format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = format_dt
    env.filters["num"] = format_number
    env.globals.update(static=static_url, priority_name=lambda p: Priority(p).name, csrf_field=CSRF_FIELD)
    return env


ENV = _environment()
MACROS: Any = ENV.get_template("_macros.html").module


def _csrf_input(token: str) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


async def render(
    request: Request, user: DashboardUser | None, template: str, *, active: str = "", status: int = 200,
    **context: Any,
) -> HTMLResponse:  # fmt: skip
    rt = runtime(request)
    pending = 0
    if user is not None:
        async with rt.sessions() as session:
            pending = await queries.pending_count(session, user.principal.tenant_id)
    flash = take_flash(rt, request)
    html = ENV.get_template(template).render(
        user=user, nav=NAV, active=active, pending=pending, flash=flash,
        csrf=_csrf_input(user.csrf_token) if user else Markup(""), csrf_token=user.csrf_token if user else "",
        **context,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status)
    clear_flash(request, response)
    _secure(response)
    return response


def redirect(target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    _secure(response)
    return response


def done(request: Request, target: str, text: str, kind: str = "info") -> RedirectResponse:
    """The answer to a form: back to a page, with a notice on it."""
    response = redirect(target)
    set_flash(runtime(request), request, response, text, kind)
    return response


def live(items: list[dict[str, str]]) -> JSONResponse:
    """A live region's answer: the fragments to merge (see static/dashboard.js)."""
    response = JSONResponse({"count": len(items), "items": items})
    response.headers.update({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return response


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class PageRoute(APIRoute):
    """Turns the dashboard's exceptions into pages: sign-in redirects, refused forms, HTML error pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.url.path.endswith("/live"):
                    return JSONResponse({"detail": "sign in again"}, status_code=401)
                back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = (
                    "/login"
                    if request.method != "GET" or back == "/"
                    else f"/login?{urlencode({'next': back})}"
                )
                return redirect(target)
            except CsrfRefused as exc:
                return await _error_page(request, 403, "Refused", str(exc))
            except RequestError as exc:
                return await _error_page(request, exc.status, exc.title, exc.detail)

        return page_handler


async def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    try:
        user: DashboardUser | None = await current_user(request)
    except SignInRequired:
        user = None
    return await render(request, user, "error.html", status=status, title=title, detail=detail)


router = APIRouter(route_class=PageRoute, include_in_schema=False)
User = Annotated[DashboardUser, Depends(current_user)]


# -- signing in -----------------------------------------------------------------------------------------------


async def _login_page(request: Request, next_path: str, error: str | None, status: int = 200) -> HTMLResponse:
    nonce, token = new_login_nonce(runtime(request))
    response = await render(
        request, None, "login.html", status=status, next_path=next_path, error=error, login_token=token
    )
    set_login_cookie(request, response, nonce)
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    try:
        await current_user(request)
        return redirect(safe_next(next))
    except SignInRequired:
        return await _login_page(request, safe_next(next), None)


@router.post("/login")
async def login(request: Request) -> Response:
    rt = runtime(request)
    form = await checked_login_form(rt, request)
    next_path = safe_next(form.get("next"))
    key = form.get("api_key").strip()
    principal = None
    if key and len(key) < 200:
        async with rt.sessions() as session:
            principal = await tenancy.principal_for_key(session, key)
    if principal is None:
        # 200, as form frameworks answer a refused sign-in: the form is shown again, with the reason.
        return await _login_page(request, next_path, "That API key is unknown or was revoked.")
    response = redirect(next_path)
    start_session(rt, request, response, principal)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, user: User) -> Response:
    await checked_form(request, user)
    response = redirect("/login")
    end_session(request, response)
    return response


# -- overview -------------------------------------------------------------------------------------------------


@router.get("/")
async def overview(request: Request, user: User) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    async with rt.sessions() as session:
        figures = await report.delivery_figures(session, tenant_id, hours=24)
        depth = await queries.queue_depth(session, tenant_id)
        hourly = await queries.messages_per_hour(session, tenant_id, rt.dialect)
        alerts = await queries.open_alerts(session, tenant_id)
        names = await queries.channel_names(session, tenant_id)
        first = await firstrun.first_run(
            session, tenant_id, development=rt.settings.is_development, channel_form=_channel_form()
        )
    series = [charts.Series(k, queries.BAND_LABELS[k], hourly.bands[k]) for k in queries.STATUS_BANDS]
    chart = charts.stacked_bars(
        hourly.hours, series, title="Messages per hour by status, last 24 hours (UTC)", chart_id="hourly"
    )
    return await render(
        request, user, "overview.html", active="overview", figures=figures, depth=depth, alerts=alerts,
        names=names, chart=chart, hourly=hourly, series=series, first=first,
    )  # fmt: skip


def _channel_form() -> str:
    """Where the first-run path adds a channel: its Setup form when there is one, else the Interfaces page."""
    from herald.web.dashboard.manage import BY_KEY  # manage's pages import this module

    return "/manage/channels/new" if "channels" in BY_KEY else "/interfaces"


# -- approvals ------------------------------------------------------------------------------------------------


async def _pending(
    rt: Runtime, tenant_id: str, agent_id: str | None
) -> list[tuple[Message, dict[str, Any] | None]]:
    """Held messages with their approval requests: where each copy went and who has seen or answered it."""
    async with rt.sessions() as session:
        held = await messaging.list_messages(
            session, tenant_id, status=Status.PENDING_APPROVAL, agent_id=agent_id or None, limit=200
        )
        requests = await outreach.requests_for_messages(session, [m.id for m in held])
    return [(m, requests.get(m.id)) for m in held]


def _card_version(message: Message, request: dict[str, Any] | None) -> str:
    """Changes when a copy is sent, seen or answered, so the live page redraws the card."""
    if request is None:
        return message.id
    marks = "".join(
        f"{d['message_status']}{d['seen']:d}{d['answered_at'] is not None:d}" for d in request["deliveries"]
    )
    return f"{message.id}:{request['approvals']}:{marks}"


@router.get("/approvals")
async def approvals(request: Request, user: User, agent: str | None = None) -> Response:
    items = await _pending(runtime(request), user.principal.tenant_id, agent)
    live_url = "/approvals/live" + (f"?{urlencode({'agent': agent})}" if agent else "")
    return await render(
        request, user, "approvals.html", active="approvals", items=items, agent=agent or "", live_url=live_url
    )


@router.get("/approvals/live")
async def approvals_live(request: Request, user: User, agent: str | None = None) -> Response:
    items = await _pending(runtime(request), user.principal.tenant_id, agent)
    return live(
        [
            {
                "id": m.id,
                "version": _card_version(m, r),
                "html": str(MACROS.approval_card(m, user.csrf_token, r)),
            }
            for m, r in items
        ]
    )


async def _decide(
    request: Request, user: User, decision: str, ids: list[str], reason: str | None
) -> tuple[int, list[str]]:
    """Each decision in its own transaction: one message decided elsewhere must not undo the rest."""
    rt = runtime(request)
    decided, problems = 0, []
    for message_id in dict.fromkeys(ids):
        try:
            async with rt.sessions.begin() as session:
                # A vote like any approver's: the request's quorum holds, and its copies settle everywhere.
                await decisions.decide_by_api(rt, session, user.principal, message_id, decision,
                                              user.principal.actor, reason)  # fmt: skip
            await decisions.settle_after(rt, message_id)
            decided += 1
        except RequestError as exc:
            problems.append(exc.detail)
    return decided, problems


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@router.post("/approvals/{decision}")
async def decide(request: Request, user: User, decision: str) -> Response:
    form = await checked_form(request, user)
    back = safe_next(form.get("back"), "/approvals")
    if decision not in ("approve", "reject"):
        raise ValidationFailed("the decision is approve or reject")
    ids = [i for i in form.getlist("ids") if i][:MAX_BATCH]
    if not ids:
        return done(request, back, "Select at least one message first.", "error")
    reason = form.get("reason").strip()[:2000] or None
    if decision == "reject" and reason is None:
        return done(request, back, "Give a reason for rejecting.", "error")
    decided, problems = await _decide(request, user, decision, ids, reason)
    verb = "Approved" if decision == "approve" else "Rejected"
    text = f"{verb} {_plural(decided, 'message')}."
    if problems:
        text += f" {_plural(len(problems), 'message')} could not be: " + "; ".join(problems[:3])
    return done(request, back, text, "error" if problems else "info")


# -- messages -------------------------------------------------------------------------------------------------


def _parse_time(raw: str | None, name: str, errors: list[str]) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        errors.append(f"{name}: not a date and time ({raw!r})")
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/messages")
async def messages_list(
    request: Request,
    user: User,
    status: str | None = None,
    agent: str | None = None,
    platform: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    errors: list[str] = []
    if status and status not in ALL_STATUSES:
        errors.append(f"status: unknown status {status!r}")
        status = None
    wanted = queries.MessageFilter(
        status=status or None, agent_id=agent or None, platform=platform or None,
        since=_parse_time(since, "from", errors), until=_parse_time(until, "until", errors),
    )  # fmt: skip
    async with rt.sessions() as session:
        rows = await queries.messages_page(session, tenant_id, wanted, limit=PAGE_SIZE, cursor=cursor or None)
        agents = await queries.distinct_values(session, tenant_id, Message.agent_id)
        names = await queries.channel_names(session, tenant_id)
    filters = {"status": status or "", "agent": agent or "", "platform": platform or "",
               "since": since or "", "until": until or ""}  # fmt: skip
    more = None
    if len(rows) == PAGE_SIZE:
        more = "/messages?" + urlencode({**{k: v for k, v in filters.items() if v}, "cursor": rows[-1].id})
    return await render(
        request, user, "messages.html", active="messages", rows=rows, filters=filters, agents=agents,
        platforms=sorted(PLATFORMS), statuses=sorted(ALL_STATUSES), errors=errors, more=more, names=names,
        filtered=any(filters.values()) or bool(cursor),
    )  # fmt: skip


@router.get("/messages/{message_id}")
async def message_page(request: Request, user: User, message_id: str) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    async with rt.sessions() as session:
        message = await messaging.get_message(session, tenant_id, message_id)
        attempts = await messaging.attempts_of(session, message.id)
        approvals_, audit = await queries.message_trail(session, tenant_id, message.id)
        names = await queries.channel_names(session, tenant_id)
    return await render(
        request, user, "message.html", active="messages", m=message, attempts=attempts, approvals=approvals_,
        audit=audit, names=names, cancellable=message.status in CANCELLABLE,
    )  # fmt: skip


@router.post("/messages/{message_id}/cancel")
async def message_cancel(request: Request, user: User, message_id: str) -> Response:
    await checked_form(request, user)
    async with runtime(request).sessions.begin() as session:
        await messaging.cancel(session, user.principal, message_id)
    return done(request, f"/messages/{message_id}", "Message cancelled.")


# -- schedules ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleView:
    """A schedule with its rule in words and its next runs (in its own time zone)."""

    row: Schedule
    rule: str
    upcoming: list[datetime]


def schedule_view(schedule: Schedule, count: int) -> ScheduleView:
    upcoming: list[datetime] = []
    if schedule.cron_expression:
        rule = describe_cron(schedule.cron_expression)
        if schedule.status == scheduling.ACTIVE:
            upcoming = next_runs(
                schedule.cron_expression, timezone=schedule.timezone, after=utcnow(), count=count
            )
    elif schedule.next_run:
        rule = "Once, at the time below"
        if schedule.status == scheduling.ACTIVE:
            upcoming = [schedule.next_run]
    else:
        rule = "Once (done)"
    return ScheduleView(schedule, rule, upcoming)


@router.get("/schedules")
async def schedules_list(request: Request, user: User) -> Response:
    async with runtime(request).sessions() as session:
        rows = await scheduling.list_schedules(session, user.principal.tenant_id, limit=200)
    views = [schedule_view(s, 3) for s in rows]
    return await render(request, user, "schedules.html", active="schedules", views=views)


@router.get("/schedules/{schedule_id}")
async def schedule_page(request: Request, user: User, schedule_id: str) -> Response:
    tenant_id = user.principal.tenant_id
    async with runtime(request).sessions() as session:
        schedule = await scheduling.get(session, tenant_id, schedule_id)
        runs = await scheduling.executions(session, tenant_id, schedule_id=schedule.id, limit=50, cursor=None)
    return await render(
        request, user, "schedule.html", active="schedules", view=schedule_view(schedule, 5), runs=runs
    )


@router.post("/schedules/{schedule_id}/{action}")
async def schedule_action(request: Request, user: User, schedule_id: str, action: str) -> Response:
    form = await checked_form(request, user)
    back = safe_next(form.get("back"), "/schedules")
    change = {"pause": scheduling.pause, "resume": scheduling.resume}.get(action)
    if change is None:
        raise ValidationFailed("the action is pause or resume")
    try:
        async with runtime(request).sessions.begin() as session:
            schedule = await change(session, user.principal, schedule_id)
            name = schedule.name or schedule.id
    except RequestError as exc:
        if exc.status == 404:
            raise
        return done(request, back, exc.detail, "error")
    return done(request, back, f"Schedule {name} {'paused' if action == 'pause' else 'resumed'}.")


# -- campaigns ------------------------------------------------------------------------------------------------


@router.get("/campaigns")
async def campaigns_list(request: Request, user: User) -> Response:
    """Each campaign with its next run and its last runs' counts."""
    async with runtime(request).sessions() as session:
        rows = await campaigning.list_campaigns(session, user.principal.tenant_id, limit=200)
        last = await campaigning.last_runs(session, [c.id for c in rows], 3)
    return await render(request, user, "campaigns.html", active="campaigns", rows=rows, last=last)


@router.get("/campaigns/{campaign_id}")
async def campaign_page(request: Request, user: User, campaign_id: str) -> Response:
    """A campaign, its runs (a held run with its stored preview and the decision buttons), and a fresh preview
    when asked for (``?preview=1``: it reads the audience, so it is not made on every visit)."""
    rt, tenant_id = runtime(request), user.principal.tenant_id
    async with rt.sessions() as session:
        campaign = await campaigning.get(session, tenant_id, campaign_id)
        runs = await campaigning.runs(session, tenant_id, campaign_id, limit=20, cursor=None)
    preview, problem = None, None
    if request.query_params.get("preview"):
        try:
            preview = await campaigning.preview(rt, user.principal, campaign_id, sample=5)
        except RequestError as exc:
            problem = exc.detail
    held = [r for r in runs if r.status == campaign_model.PENDING_APPROVAL]
    return await render(
        request, user, "campaign.html", active="campaigns", c=campaign, runs=runs, held=held,
        preview=preview, problem=problem,
    )  # fmt: skip


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(request: Request, user: User, campaign_id: str, action: str) -> Response:
    """Pause or resume a campaign."""
    form = await checked_form(request, user)
    back = safe_next(form.get("back"), f"/campaigns/{campaign_id}")
    change = {"pause": campaigning.pause, "resume": campaigning.resume}.get(action)
    if change is None:
        raise ValidationFailed("the action is pause or resume")
    try:
        async with runtime(request).sessions.begin() as session:
            campaign = await change(session, user.principal, campaign_id)
            name = campaign.name
    except RequestError as exc:
        if exc.status == 404:
            raise
        return done(request, back, exc.detail, "error")
    return done(request, back, f"Campaign {name} {'paused' if action == 'pause' else 'resumed'}.")


@router.post("/campaigns/{campaign_id}/runs/{run_id}/{decision}")
async def campaign_run_decision(
    request: Request, user: User, campaign_id: str, run_id: str, decision: str
) -> Response:
    """Approve or reject a run held for approval, as the signed-in user: a vote like any approver's when the run
    has an approval request (its quorum holds, its copies settle everywhere)."""
    form = await checked_form(request, user)
    back = f"/campaigns/{campaign_id}"
    if decision not in (decisions.APPROVE, decisions.REJECT):
        raise ValidationFailed("the decision is approve or reject")
    reason = (form.get("reason") or "").strip() or None
    rt = runtime(request)
    try:
        async with rt.sessions.begin() as session:
            await decisions.decide_run_by_api(rt, session, user.principal, campaign_id, run_id, decision,
                                              user.principal.actor, reason)  # fmt: skip
        run = await decisions.after_run_decided(rt, user.principal.tenant_id, campaign_id, run_id)
    except RequestError as exc:
        if exc.status == 404:
            raise
        return done(request, back, exc.detail, "error")
    if run.status == campaign_model.PENDING_APPROVAL:
        return done(request, back, "Approval recorded: the run waits for the rest of its approvers.")
    if decision == decisions.APPROVE:
        return done(request, back, f"Run approved: {run.created} messages created.")
    return done(request, back, "Run rejected: nothing of it is sent.")


# -- monitors -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorView:
    """A monitor with what the page shows: its condition in words, current value, recent values."""

    row: Monitor
    condition: str
    value: Any
    spark: Markup
    alerts: int

    @property
    def version(self) -> str:
        return f"{self.row.state}|{self.row.status}|{self.value}|{self.alerts}|{self.row.last_error}"


async def _monitor_views(rt: Runtime, tenant_id: str, rows: list[Monitor]) -> list[MonitorView]:
    async with rt.sessions() as session:
        counts = await queries.alert_counts(session, tenant_id, [m.id for m in rows])
        recent = await queries.recent_values(session, tenant_id, rows)
    views = []
    for monitor in rows:
        condition = monitor.condition_text or conditions.describe(
            conditions.parse_condition(monitor.condition)
        )
        spark = charts.sparkline(
            recent[monitor.id], threshold=queries.numeric_threshold(monitor), title=monitor.name
        )
        value = (monitor.last_value or {}).get("value")
        views.append(MonitorView(monitor, condition, value, spark, counts.get(monitor.id, 0)))
    return views


async def _monitors(rt: Runtime, tenant_id: str) -> list[MonitorView]:
    async with rt.sessions() as session:
        rows = await monitoring.list_monitors(
            session, tenant_id, status=None, workspace_id=None, limit=200, cursor=None
        )
    return await _monitor_views(rt, tenant_id, rows)


async def _recent_alerts(rt: Runtime, tenant_id: str) -> tuple[list[MonitorAlert], dict[str, str]]:
    async with rt.sessions() as session:
        recent = await monitoring.alerts(session, tenant_id, monitor_id=None, limit=20, cursor=None)
        names = await queries.monitor_names(session, tenant_id)
    return recent, names


@router.get("/monitors")
async def monitors_list(request: Request, user: User) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    views = await _monitors(rt, tenant_id)
    recent, names = await _recent_alerts(rt, tenant_id)
    return await render(
        request, user, "monitors.html", active="monitors", views=views, recent=recent, names=names
    )


@router.get("/monitors/live")
async def monitors_live(request: Request, user: User) -> Response:
    views = await _monitors(runtime(request), user.principal.tenant_id)
    return live(
        [
            {"id": v.row.id, "version": v.version, "html": str(MACROS.monitor_row(v, user.csrf_token))}
            for v in views
        ]
    )


@router.get("/monitors/alerts/live")
async def alerts_live(request: Request, user: User) -> Response:
    recent, names = await _recent_alerts(runtime(request), user.principal.tenant_id)
    return live([{"id": a.id, "version": a.id, "html": str(MACROS.alert_row(a, names))} for a in recent])


@router.get("/monitors/{monitor_id}")
async def monitor_page(request: Request, user: User, monitor_id: str) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    async with rt.sessions() as session:
        monitor = await monitoring.get(session, tenant_id, monitor_id)
        history = await monitoring.alerts(session, tenant_id, monitor_id=monitor.id, limit=50, cursor=None)
    (view,) = await _monitor_views(rt, tenant_id, [monitor])
    return await render(
        request, user, "monitor.html", active="monitors", view=view, history=history,
        names={monitor.id: monitor.name},
    )  # fmt: skip


def _test_words(result: dict[str, Any]) -> str:
    value = result.get("current_value")
    threshold = result.get("threshold")
    if isinstance(threshold, dict):
        threshold = (
            f"{threshold.get('operator', '')} {threshold.get('value', '')}{threshold.get('unit') or ''}"
        )
    verdict = "would fire" if result.get("triggered") else "would not fire"
    text = (
        f"Test of {result.get('monitor_name')}: value {format_number(value)} against {threshold}: {verdict}."
    )
    if result.get("error"):
        text += f" Error: {result['error']}"
    return text


@router.post("/monitors/{monitor_id}/{action}")
async def monitor_action(request: Request, user: User, monitor_id: str, action: str) -> Response:
    form = await checked_form(request, user)
    back = safe_next(form.get("back"), "/monitors")
    rt = runtime(request)
    if action == "test":
        async with rt.sessions() as session:
            monitor = await monitoring.get(session, user.principal.tenant_id, monitor_id)
        result = await monitoring.test_now(rt, monitor)
        return done(request, back, _test_words(result), "error" if result.get("error") else "info")
    status = {"pause": "paused", "resume": "active"}.get(action)
    if status is None:
        raise ValidationFailed("the action is pause, resume or test")
    try:
        async with rt.sessions.begin() as session:
            monitor = await monitoring.set_status(session, user.principal, monitor_id, status)
            name = monitor.name
    except RequestError as exc:
        if exc.status == 404:
            raise
        return done(request, back, exc.detail, "error")
    return done(request, back, f"Monitor {name} {'paused' if action == 'pause' else 'resumed'}.")


# -- dev inbox ------------------------------------------------------------------------------------------------


@router.get("/devinbox")
async def devinbox(request: Request, user: User, platform: str | None = None) -> Response:
    tenant_id = user.principal.tenant_id
    async with runtime(request).sessions() as session:
        threads = await queries.devinbox_threads(session, tenant_id, platform=platform or None)
        platforms = await queries.devinbox_platforms(session, tenant_id)
    return await render(
        request, user, "devinbox.html", active="devinbox", threads=threads, platforms=platforms,
        platform=platform or "",
    )  # fmt: skip


@router.get("/devinbox/{row_id}/attachments/{index}")
async def devinbox_attachment(request: Request, user: User, row_id: str, index: int) -> Response:
    """A file the dev inbox received, always as a download (never rendered: it is whatever a sender gave)."""
    async with runtime(request).sessions() as session:
        item = await queries.devinbox_attachment(session, user.principal.tenant_id, row_id, index)
    return Response(
        base64.b64decode(item["content"]),
        media_type="application/octet-stream",
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(str(item['filename']), safe='')}",
            "x-content-type-options": "nosniff",
        },
    )


# -- agents ---------------------------------------------------------------------------------------------------


@router.get("/agents")
async def agents(request: Request, user: User) -> Response:
    tenant_id = user.principal.tenant_id
    async with runtime(request).sessions() as session:
        rows = await tenancy.list_agents(session, tenant_id, limit=1000, cursor=None)
        audit = await queries.audit_for(session, tenant_id, "agent")
    return await render(
        request, user, "agents.html", active="agents", rows=rows, audit=audit, levels=list(MaturityLevel)
    )


@router.post("/agents/{agent_id}/maturity")
async def agent_maturity(request: Request, user: User, agent_id: str) -> Response:
    form = await checked_form(request, user)
    if not user.principal.is_admin:
        raise Forbidden("changing an agent's maturity level needs an admin API key")
    try:
        level = MaturityLevel(form.get("maturity_level").upper())
    except ValueError as exc:
        raise ValidationFailed("unknown maturity level", field="maturity_level") from exc
    rt = runtime(request)
    async with rt.sessions.begin() as session:
        before = (await tenancy.get_agent(session, user.principal.tenant_id, agent_id)).maturity_level
        await tenancy.update_agent(
            session, user.principal, agent_id, name=None, maturity_level=level, callback_url=None,
            clear_callback=False,
        )  # fmt: skip
    rt.governance.invalidate(user.principal.tenant_id, agent_id)
    if before == level.value:
        return done(request, "/agents", f"{agent_id} is already {level.value}.")
    return done(request, "/agents", f"{agent_id} is now {level.value} (was {before}).")


# -- conversations --------------------------------------------------------------------------------------------

THREAD_SIZE = 100
MAX_REPLY = 32_000


@router.get("/conversations")
async def conversations_list(
    request: Request, user: User, channel: str | None = None, cursor: str | None = None
) -> Response:
    tenant_id = user.principal.tenant_id
    async with runtime(request).sessions() as session:
        rows = await queries.conversations_page(
            session, tenant_id, channel_id=channel or None, limit=PAGE_SIZE, cursor=cursor or None
        )
        names = await queries.channel_names(session, tenant_id)
    more = None
    if len(rows) == PAGE_SIZE:
        more = "/conversations?" + urlencode(
            {**({"channel": channel} if channel else {}), "cursor": rows[-1].row.id}
        )
    return await render(
        request, user, "conversations.html", active="conversations", rows=rows, more=more,
        channel=channel or "", channel_name=names.get(channel or "", channel or ""), paged=bool(cursor),
    )  # fmt: skip


async def _thread(rt: Runtime, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
    async with rt.sessions() as session:
        return await conversations.conversation_messages(
            session, tenant_id, conversation_id, limit=THREAD_SIZE
        )


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            return _plural(seconds // size, unit)
    return _plural(seconds, "second")


@router.get("/conversations/{conversation_id}")
async def conversation_page(request: Request, user: User, conversation_id: str) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    async with rt.sessions() as session:
        conversation = await conversations.get_conversation(session, tenant_id, conversation_id)
        context = await conversations.session_context(rt, session, conversation)
        channel = await queries.channel(session, tenant_id, conversation.channel_id)
        contact = await queries.contact_name(session, tenant_id, conversation.contact_id)
        agents_ = await tenancy.list_agents(session, tenant_id, limit=1000, cursor=None)
    thread = await _thread(rt, tenant_id, conversation.id)
    spans = sorted({str(h["conversation_id"]) for h in context["history"]} - {conversation.id})
    return await render(
        request, user, "conversation.html", active="conversations", c=conversation, thread=thread,
        context=context, spans=spans, channel=channel, contact=contact, agents=[a.id for a in agents_],
        idle=_duration(rt.settings.conversation_idle_seconds), thread_size=THREAD_SIZE,
    )  # fmt: skip


@router.get("/conversations/{conversation_id}/live")
async def conversation_live(request: Request, user: User, conversation_id: str) -> Response:
    thread = await _thread(runtime(request), user.principal.tenant_id, conversation_id)
    return live(
        [{"id": str(h["id"]), "version": str(h["status"]), "html": str(MACROS.chat_item(h))} for h in thread]
    )


@router.post("/conversations/{conversation_id}/reply")
async def conversation_reply(request: Request, user: User, conversation_id: str) -> Response:
    """The dashboard's ``POST /api/v1/conversations/{id}/reply``: the same service call, under the same
    governance (an INTERN's reply waits for approval, a STUDENT's is refused and audited)."""
    form = await checked_form(request, user)
    back = f"/conversations/{conversation_id}"
    text = form.get("text").strip()
    if not text:
        return done(request, back, "Write a reply first.", "error")
    if len(text) > MAX_REPLY:
        return done(request, back, f"A reply has at most {MAX_REPLY:,} characters.", "error")
    rt = runtime(request)
    found = False
    try:
        async with rt.sessions.begin() as session:
            conversation = await conversations.get_conversation(
                session, user.principal.tenant_id, conversation_id
            )
            found = True
            agent_id = form.get("agent_id").strip() or conversation.agent_id
            if agent_id is None:
                raise ValidationFailed(
                    "no agent has answered this conversation yet: choose one", field="agent_id"
                )
            last = await conversations.last_inbound(session, conversation.id)
            prepared = await conversations.reply(
                rt,
                session,
                conversation,
                agent_id=agent_id,
                text=text,
                in_reply_to=last,
                actor=user.principal,
            )
            status = str(prepared.values["status"])
    except RequestError as exc:
        if not found:
            raise
        return done(request, back, f"Reply not sent: {exc.detail}", "error")
    if status == Status.PENDING_APPROVAL:
        return done(request, back, f"Reply by {agent_id} waits for approval.")
    return done(request, back, f"Reply by {agent_id} {status.replace('_', ' ')}.")


# -- interfaces -----------------------------------------------------------------------------------------------


@router.get("/interfaces")
async def interfaces_list(request: Request, user: User) -> Response:
    rt, tenant_id = runtime(request), user.principal.tenant_id
    async with rt.sessions() as session:
        rows = await queries.interfaces(session, tenant_id)
        items = await conversations.interface_status(session, rows)
        counts = await queries.conversation_counts(session, tenant_id)
        boxes = await mailboxes.views_for_channels(session, [r.id for r in rows])
    base = (rt.settings.public_url or str(request.base_url)).rstrip("/")
    return await render(
        request,
        user,
        "interfaces.html",
        active="interfaces",
        items=items,
        counts=counts,
        base=base,
        mailboxes=boxes,
    )


@router.post("/interfaces/{channel_id}/{action}")
async def interface_action(request: Request, user: User, channel_id: str, action: str) -> Response:
    form = await checked_form(request, user)
    back = safe_next(form.get("back"), "/interfaces")
    if action not in ("enable", "disable"):
        raise ValidationFailed("the action is enable or disable")
    rt = runtime(request)
    async with rt.sessions.begin() as session:
        channel = await conversations.set_enabled(rt, session, user.principal, channel_id, action == "enable")
        name = channel.name
    if action == "enable":
        return done(request, back, f"Interface {name} enabled: it takes webhooks and sends again.")
    return done(request, back, f"Interface {name} disabled: its webhook answers 503 and its messages wait.")
