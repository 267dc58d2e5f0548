"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from herald import dashboard, retention
from herald.api import problems
from herald.api.routes import (
    agents,
    channels,
    contacts,
    conversations,
    delivery,
    events,
    interfaces,
    messages,
    monitors,
    ops,
    otp,
    proactive,
    records,
    retention_policy,
    schedules,
    triggers,
)
from herald.config import Settings
from herald.conversations.processor import Processor
from herald.events import dispatcher as event_dispatcher
from herald.messaging.worker import Worker
from herald.monitoring import engine as monitor_engine
from herald.runtime import Runtime
from herald.scheduling.scheduler import Scheduler
from herald.triggers import reactions as trigger_reactions


def create_app(settings: Settings, *, runtime: Runtime | None = None, run_worker: bool = True) -> FastAPI:
    """Build the app. With ``run_worker`` the process also runs a worker (the embedded ``herald serve`` mode)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings)
        app.state.runtime = rt
        stop = asyncio.Event()
        tasks = []
        if run_worker:
            worker = Worker(rt)
            app.state.worker = worker
            tasks.append(asyncio.create_task(worker.run(stop)))
            tasks.append(asyncio.create_task(Scheduler(rt).run(stop)))
            tasks.append(asyncio.create_task(monitor_engine.run_forever(rt, stop)))
            tasks.append(asyncio.create_task(event_dispatcher.run_forever(rt, stop)))
            tasks.append(asyncio.create_task(trigger_reactions.run_forever(rt, stop)))
            tasks.append(asyncio.create_task(retention.run_forever(rt, stop)))
            tasks.append(asyncio.create_task(Processor(rt).run(stop)))
        try:
            yield
        finally:
            stop.set()
            rt.waker.wake()
            if tasks:
                await asyncio.gather(*tasks)
                await app.state.worker.stop_heartbeat()
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
    for module in (proactive, messages, agents, channels, contacts, delivery, interfaces, records, ops):
        app.include_router(module.router)
    app.include_router(schedules.messaging)
    app.include_router(schedules.proactive)
    app.include_router(monitors.monitoring)
    app.include_router(monitors.proactive)
    app.include_router(triggers.router)
    app.include_router(triggers.hooks)
    app.include_router(events.router)
    app.include_router(otp.router)
    app.include_router(retention_policy.router)
    app.include_router(events.stream)
    app.include_router(conversations.conversations)
    app.include_router(conversations.rules)
    dashboard.install(app)
    return app
