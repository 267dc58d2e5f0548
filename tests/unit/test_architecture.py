"""One pipeline by construction: route handlers run no SQL, and the dashboard never borrows from the API's routes.

Routes parse the request, open the session or transaction, call a service and shape the answer; every query
lives in a service (or, for the dashboard's read-only figures, in :mod:`herald.web.dashboard.queries`). These checks
read the source (``ast``), so a query slipped back into a route fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "herald"
ROUTE_MODULES = [
    *sorted((SRC / "web" / "api" / "routes").glob("*.py")),
    SRC / "web" / "dashboard" / "routes.py",
]
DASHBOARD_MODULES = sorted((SRC / "web" / "dashboard").glob("*.py"))

# What a route may take from SQLAlchemy: the session's type, for annotations.
ALLOWED_SQLALCHEMY = {"sqlalchemy.ext.asyncio": {"AsyncSession"}}
# Lookups that are SQL, however small (``owned`` is a query).
SQL_MODULES = ("herald.storage.queries",)
# What running SQL on a session looks like.
SESSION_CALLS = frozenset({
    "execute", "scalar", "scalars", "get", "get_one", "add", "add_all", "delete", "merge", "flush", "refresh",
    "stream", "stream_scalars", "connection", "run_sync",
})  # fmt: skip
API_ROUTES = "herald.web.api.routes"


def _name(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


def _session_names(tree: ast.AST) -> set[str]:
    """Names bound to a session: ``async with rt.sessions() as x`` (or ``.begin()``), and parameters annotated
    ``AsyncSession``; ``session`` always counts."""
    names = {"session"}
    for node in ast.walk(tree):
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name) and "sessions" in ast.unparse(item.context_expr):
                    names.add(item.optional_vars.id)
        elif (
            isinstance(node, ast.arg)
            and node.annotation is not None
            and "AsyncSession" in ast.unparse(node.annotation)
        ):
            names.add(node.arg)
    return names


def sql_in(source: str, filename: str = "<route>") -> list[str]:
    """Every place in ``source`` that imports query building or runs SQL on a session."""
    tree = ast.parse(source, filename)
    problems: list[str] = []
    sessions = _session_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems.extend(
                f"{filename}:{node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "sqlalchemy" or alias.name.startswith(SQL_MODULES)
            )
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module
            if module.split(".")[0] == "sqlalchemy":
                allowed = ALLOWED_SQLALCHEMY.get(module, set())
                problems.extend(
                    f"{filename}:{node.lineno}: imports {alias.name} from {module}"
                    for alias in node.names
                    if alias.name not in allowed
                )
            elif module.startswith(SQL_MODULES):
                problems.append(f"{filename}:{node.lineno}: imports from {module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and receiver.id in sessions and node.func.attr in SESSION_CALLS:
                problems.append(f"{filename}:{node.lineno}: {receiver.id}.{node.func.attr}(...) in a route")
    return problems


def _is_request_model(module: str, name: str) -> bool:
    """Whether ``module.name`` is a pydantic model: the API's contract (a request body), not a handler."""
    import importlib

    from pydantic import BaseModel

    found = getattr(importlib.import_module(module), name, None)
    return isinstance(found, type) and issubclass(found, BaseModel)


def api_route_imports(source: str, filename: str = "<dashboard>") -> list[str]:
    """Every import of the API's route modules (their handlers or private helpers) in ``source``. Request models
    may be imported by name: the dashboard's forms are built from them (:mod:`herald.web.dashboard.forms`)."""
    problems: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules = [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if not (
                    node.module.startswith(API_ROUTES + ".") and _is_request_model(node.module, alias.name)
                )
            ]
        else:
            continue
        problems.extend(
            f"{filename}:{node.lineno}: imports {m}"
            for m in modules
            if m == API_ROUTES or m.startswith(API_ROUTES + ".")
        )
    return problems


def test_the_checks_see_the_modules_they_guard() -> None:
    names = {_name(p) for p in ROUTE_MODULES}
    assert {
        "herald/web/api/routes/schedules.py",
        "herald/web/api/routes/ops.py",
        "herald/web/dashboard/routes.py",
    } <= names
    assert {"herald/web/dashboard/routes.py", "herald/web/dashboard/queries.py"} <= {
        _name(p) for p in DASHBOARD_MODULES
    }


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select\n",
        "import sqlalchemy as sa\n",
        "from sqlalchemy.orm import InstrumentedAttribute\n",
        "from herald.storage.queries import owned\n",
        "async def f(rt):\n    async with rt.sessions() as session:\n        await session.get(Tenant, 'x')\n",
        "async def f(rt):\n    async with rt.sessions.begin() as db:\n        await db.execute(QUERY)\n",
        "async def f(s: AsyncSession):\n    return (await s.scalars(q)).all()\n",
        "async def f(rt, row):\n    async with rt.sessions.begin() as session:\n        session.add(row)\n",
    ],
)
def test_sql_is_found(source: str) -> None:
    assert sql_in(source)


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy.ext.asyncio import AsyncSession\n",
        "async def f(rt, form):\n    async with rt.sessions() as session:\n"
        "        return await service.get(session, form.get('id'))\n",
        "def f(rt):\n    return rt.lookups.get(('interface', 'x'))\n",
    ],
)
def test_service_calls_are_not_sql(source: str) -> None:
    assert sql_in(source) == []


@pytest.mark.parametrize(
    "source",
    [
        "from herald.web.api.routes import delivery\n",
        "from herald.web.api.routes.interfaces import _interfaces_out\n",
        "import herald.web.api.routes.records\n",
        "from herald.web.api import routes\n",
    ],
)
def test_api_route_imports_are_found(source: str) -> None:
    assert api_route_imports(source)


def test_request_models_may_be_imported_but_nothing_beside_them() -> None:
    assert api_route_imports("from herald.web.api.routes.conversations import RuleCreate\n") == []
    mixed = "from herald.web.api.routes.triggers import TriggerCreate, webhook_out\n"
    assert api_route_imports(mixed) == ["<dashboard>:1: imports herald.web.api.routes.triggers.webhook_out"]


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=_name)
def test_routes_run_no_sql(path: Path) -> None:
    """No query building, no session calls, no ``owned`` lookups in a route module: call a service."""
    assert sql_in(path.read_text(), _name(path)) == []


@pytest.mark.parametrize("path", DASHBOARD_MODULES, ids=_name)
def test_the_dashboard_does_not_borrow_api_routes(path: Path) -> None:
    """The dashboard calls the services the API's routes call (or the API itself), never the routes or their
    helpers; it may import their request models, which its forms are built from."""
    assert api_route_imports(path.read_text(), _name(path)) == []


def test_a_worker_process_loads_no_web_framework_and_no_fakes() -> None:
    """The delivery loop imports what delivers: FastAPI and the providers' fake servers load only where served.

    Fewer modules in a worker mean a smaller heap for the garbage collector to walk on every collection, which
    the delivery benchmark measures; a fake imported eagerly from a provider package fails here.
    """
    import subprocess
    import sys

    probe = (
        "import sys, herald.app, herald.pipeline.worker, herald.providers;"
        "print(sorted(m for m in sys.modules if m.startswith('fastapi') or m.endswith(('.fake', '_fake'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_named_fake_module_serves_a_router() -> None:
    from herald.providers import REGISTRY

    assert len(REGISTRY.fakes()) >= 12
