"""Every API and dashboard route runs on the event loop: FastAPI runs a plain ``def`` endpoint or dependency in its
thread pool, a hand-off to a thread and back on every request (it was a sixth of a single send's time in the API
process, for a dependency that only read ``app.state``)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from herald.core.config import load_settings
from herald.web.api.app import create_app


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, through included routers (FastAPI keeps the router they came from) and mounts."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from _api_routes(route.routes)


def _runs_in_a_thread(call: Any) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
    return not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target))


def test_no_route_or_dependency_runs_in_the_thread_pool(tmp_path: Path) -> None:
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path}/h.db", data_dir=str(tmp_path)))
    routes = list(_api_routes(app.routes))
    assert len(routes) > 100  # the walk reached the routers' routes
    threaded = sorted(
        f"{route.path}: {getattr(call, '__qualname__', type(call).__qualname__)}"
        for route in routes
        for call in (route.endpoint, *_calls(route.dependant))
        if _runs_in_a_thread(call)
    )
    assert threaded == []
