"""Fake provider servers: every provider's API on one local port, for tests and for trying Herald offline.

``herald fake-providers --port P`` serves :func:`create_fake_app`; point a channel's ``base_url`` at it.
"""

from __future__ import annotations

from fastapi import FastAPI

from herald.fakes import (
    apprise,
    discord,
    google_chat,
    graph,
    line,
    resend,
    sendgrid,
    signal_cli,
    slack,
    teams,
    telegram,
    twilio,
)  # new fakes: add to this import and to PROVIDER_FAKES
from herald.fakes.base import FakeState, control_router

PROVIDER_FAKES = (
    slack,
    discord,
    teams,
    google_chat,
    signal_cli,
    telegram,
    graph,
    line,
    twilio,
    sendgrid,
    resend,
    apprise,
)


def create_fake_app(state: FakeState | None = None) -> FastAPI:
    state = state or FakeState()
    app = FastAPI(title="Herald fake providers", docs_url="/_fake/docs", openapi_url="/_fake/openapi.json")
    app.state.fake = state
    app.include_router(control_router(state))
    for module in PROVIDER_FAKES:
        app.include_router(module.router(state))
    return app


__all__ = ["FakeState", "create_fake_app"]
