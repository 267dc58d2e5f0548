"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.routing import Route

from herald import app as loops
from herald.agents.mcp import McpEndpoint
from herald.core.config import Settings
from herald.runtime import Runtime
from herald.web import dashboard
from herald.web.api import contract, problems
from herald.web.api.last_resort import AnswerUnexpected
from herald.web.api.observe import Observe
from herald.web.api.routes import (
    agents,
    campaigns,
    channels,
    contacts,
    conversations,
    datasources,
    delivery,
    digest_rules,
    email_forms,
    events,
    humans,
    interfaces,
    keys,
    mailboxes,
    messages,
    monitors,
    ops,
    otp,
    patterns,
    proactive,
    records,
    retention_policy,
    schedules,
    suggestions,
    templates,
    triggers,
)


def create_app(settings: Settings, *, runtime: Runtime | None = None, run_worker: bool = True) -> FastAPI:
    """Build the app. With ``run_worker`` the process also runs every background loop, worker and scheduler
    (the embedded ``herald serve`` mode; :mod:`herald.app` lists them). Herald's tools are served over MCP at
    ``/mcp`` (:mod:`herald.agents.mcp`)."""
    mcp = McpEndpoint()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings)
        app.state.runtime = rt
        stop = asyncio.Event()
        # Every role's loops (the worker withdraws its heartbeat as it stops).
        running = asyncio.create_task(loops.run(rt, stop, loops.COMMANDS["serve"])) if run_worker else None
        try:
            async with mcp.run(rt):  # the MCP session manager's task group lives as long as the app
                yield
        finally:
            stop.set()  # loops nap on the stop event too: no wake-up needed
            if running is not None:
                await running
            if runtime is None:
                await rt.close()

    app = FastAPI(
        title="Herald",
        version="0.1.0",
        summary="Governed proactive messaging for AI agents.",
        lifespan=lifespan,
    )
    if runtime is not None:
        app.state.runtime = runtime
    problems.install(app)
    contract.install(app)  # /openapi.json: security, problem+json errors
    app.add_middleware(AnswerUnexpected)  # a 500 answered as a problem, the connection kept open
    app.add_middleware(Observe)  # outside it: request id, log context, access line, HTTP metrics
    for module in (proactive, messages, agents, keys, channels, contacts, delivery, interfaces, records, ops):
        app.include_router(module.router)
    app.include_router(datasources.router)
    app.include_router(mailboxes.router)
    app.include_router(email_forms.router)
    app.include_router(digest_rules.router)
    app.include_router(campaigns.router)
    app.include_router(schedules.messaging)
    app.include_router(schedules.proactive)
    app.include_router(monitors.monitoring)
    app.include_router(monitors.proactive)
    app.include_router(suggestions.router)
    app.include_router(triggers.router)
    app.include_router(triggers.hooks)
    app.include_router(events.router)
    app.include_router(otp.router)
    app.include_router(retention_policy.router)
    app.include_router(templates.router)
    app.include_router(events.stream)
    app.include_router(conversations.conversations)
    app.include_router(conversations.rules)
    app.include_router(patterns.router)
    for router in (humans.approvers, humans.policies, humans.requests, humans.questions, humans.links_page):
        app.include_router(router)
    # A route, not a mount: a mount at /mcp would redirect POST /mcp to /mcp/. An ASGI endpoint takes every method.
    app.router.routes.append(Route("/mcp", mcp, name="mcp", include_in_schema=False))
    dashboard.install(app)
    return app
