"""Fake provider servers: every provider's API on one local port, for tests and for trying Herald offline.

``herald fake-providers --port P`` serves :func:`create_fake_app`; point a channel's ``base_url`` at it.
"""

from __future__ import annotations

from fastapi import FastAPI

from herald.providers import REGISTRY
from herald.providers.fakebase import FakeState, control_router


def create_fake_app(state: FakeState | None = None) -> FastAPI:
    """Every registered provider's fake (each provider package's ``fake.py``) on one app."""
    state = state or FakeState()
    app = FastAPI(title="Herald fake providers", docs_url="/_fake/docs", openapi_url="/_fake/openapi.json")
    app.state.fake = state
    app.include_router(control_router(state))
    for router in REGISTRY.fakes():
        app.include_router(router(state))
    return app


__all__ = ["FakeState", "create_fake_app"]
