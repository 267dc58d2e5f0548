"""The composition root: one list of loops, every loop in exactly one role, ``serve`` running them all."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from herald import app as loops
from herald.core.background import ROLES

SRC = Path(loops.__file__).parent

EXPECTED = {
    "outbox": "worker",
    "inbound": "worker",
    "agent runs": "worker",
    "imap": "worker",
    "schedules": "scheduler",
    "stuck agent tasks": "scheduler",
    "campaigns due": "scheduler",
    "campaign runs": "scheduler",
    "monitors": "scheduler",
    "monitor analyses": "scheduler",
    "trigger reactions": "scheduler",
    "event deliveries": "scheduler",
    "retention": "scheduler",
    "approval outreach": "scheduler",
    "approval escalation": "scheduler",
    "agent notices": "scheduler",
    "receipt escalations": "scheduler",
    "digests": "scheduler",
    "suggestions": "scheduler",
}


def test_the_list_holds_every_loop_once_with_its_role() -> None:
    names = [loop.name for loop in loops.LOOPS]
    assert len(names) == len(set(names))
    assert {loop.name: loop.role for loop in loops.LOOPS} == EXPECTED


def test_the_roles_cover_every_loop_exactly_once() -> None:
    by_role = {role: loops.loops_for([role]) for role in ROLES}
    every = [loop for role_loops in by_role.values() for loop in role_loops]
    assert sorted(loop.name for loop in every) == sorted(loop.name for loop in loops.LOOPS)
    assert all(by_role[role] for role in ROLES)  # no role without work


def test_each_command_runs_its_roles_and_serve_runs_everything() -> None:
    assert loops.loops_for(loops.COMMANDS["serve"]) == loops.LOOPS
    assert {loop.name for loop in loops.loops_for(loops.COMMANDS["worker"])} == {
        "outbox",
        "inbound",
        "agent runs",
        "imap",
    }
    assert {loop.name for loop in loops.loops_for(loops.COMMANDS["scheduler"])} == {
        name for name, role in EXPECTED.items() if role == "scheduler"
    }


def _modules_declaring_loops() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if re.search(r"^LOOPS\b", path.read_text(encoding="utf-8"), re.MULTILINE) and path.name != "app.py":
            found.append(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
    return found


def test_every_module_that_declares_loops_is_in_the_list() -> None:
    modules = _modules_declaring_loops()
    assert len(modules) >= 7
    for name in modules:
        for loop in importlib.import_module(name).LOOPS:
            assert loop in loops.LOOPS, f"{name} declares {loop.name!r} but herald.app does not list it"


def test_no_other_module_lists_or_starts_loops() -> None:
    """Only the composition root reads the producers' LOOPS; only it (and the runner's own module) runs them."""
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(SRC.parent).as_posix()
        if where not in ("herald/app.py", "herald/core/background.py"):
            assert not re.search(r"\.LOOPS\b|run_loop\(", text), where
        assert "run_forever" not in text, where
