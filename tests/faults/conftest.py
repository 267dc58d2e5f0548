"""Fault tests start real ``herald`` processes: none outlives its test, whatever the test's outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import kill_leftovers


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    kill_leftovers()
