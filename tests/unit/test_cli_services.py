"""How the services run: the event loop (HERALD_EVENT_LOOP: uvloop where installed, asyncio when asked, a clear
error when uvloop is asked for but missing), and startup objects frozen out of the garbage collector's sight."""

from __future__ import annotations

import asyncio
import sys

import click
import pytest
import uvloop

from herald.cli import _loop_factory, _run_service
from herald.core.config import Settings


def test_auto_and_uvloop_choose_uvloop_and_asyncio_the_default() -> None:
    assert _loop_factory("auto") is uvloop.new_event_loop
    assert _loop_factory("uvloop") is uvloop.new_event_loop
    assert _loop_factory("asyncio") is None


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails as if not installed
    assert _loop_factory("auto") is None
    with pytest.raises(click.ClickException, match="uvloop is not installed"):
        _loop_factory("uvloop")


@pytest.mark.parametrize(("choice", "loop_type"), [("auto", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)])
def test_a_service_runs_on_the_chosen_loop(choice: str, loop_type: type) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def service() -> None:
        seen.append(asyncio.get_running_loop())

    _run_service(Settings(event_loop=choice), service())  # type: ignore[arg-type]
    assert isinstance(seen[0], loop_type)
    assert choice == "auto" or not isinstance(seen[0], uvloop.Loop)


def test_startup_objects_are_frozen_out_of_the_collectors_sight() -> None:
    import gc

    from herald.cli import YOUNG_COLLECTION_OBJECTS, _freeze_startup_objects

    threshold = gc.get_threshold()
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # the modules and everything they made at import
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_OBJECTS  # a request's objects, not 700
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
