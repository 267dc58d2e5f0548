"""``/openapi.json`` is the contract: a valid OpenAPI document in which every operation declares its security,
a typed answer and its errors as problem details; a client generated from it by ``openapi-python-client`` parses
what a running Herald really answers (a create, a list followed page by page, a 422)."""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from openapi_spec_validator import validate

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.runtime import Runtime
from herald.web.api.app import create_app
from tests.conftest import make_settings

PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/ProblemDetails"
# Public by design: each proves itself otherwise (a provider's signature, the webhook's secret) or shows nothing
# of a tenant; /metrics takes a bearer token only when HERALD_METRICS_TOKEN is set.
PUBLIC = {
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/api/v1/interfaces/{channel_id}/webhook"),
    ("post", "/api/v1/interfaces/{channel_id}/webhook"),
    ("post", "/api/hooks/{url_path}"),
}
# Answers that are not JSON: Prometheus text, a plain-text echo for Meta, server-sent events.
NOT_JSON = {
    ("get", "/metrics"),
    ("get", "/api/v1/interfaces/{channel_id}/webhook"),
    ("get", "/api/v1/events/stream"),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """What ``/openapi.json`` answers (built from the app; the live tests below fetch it from the server)."""
    return create_app(make_settings("sqlite:///unused.db", Path("var")), run_worker=False).openapi()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_the_specification_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a tenant's API key",
    }


def test_fastapis_validation_error_is_gone(spec: dict[str, Any]) -> None:
    """Herald answers a 422 as problem details with ``detail`` a string, never FastAPI's list."""
    assert "HTTPValidationError" not in json.dumps(spec)
    problem = spec["components"]["schemas"]["ProblemDetails"]
    assert problem["properties"]["detail"]["type"] == "string"
    assert set(problem["required"]) == {"title", "status", "detail"}
    assert "errors" in problem["properties"]


def test_every_operation_declares_its_security(spec: dict[str, Any]) -> None:
    bearer, public = set(), set()
    for method, path, operation in _operations(spec):
        assert "security" in operation, (method, path)
        if {"bearer": []} in operation["security"] and {} not in operation["security"]:
            bearer.add((method, path))
        else:
            public.add((method, path))
    assert public == PUBLIC
    assert len(bearer) > 90


def test_every_json_answer_is_typed(spec: dict[str, Any]) -> None:
    """A named model (or one with properties), never a bare object, for every 2xx answer with a body."""
    untyped = []
    for method, path, operation in _operations(spec):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if not status.startswith("2") or (method, path) in NOT_JSON or status == "204":
                continue
            schema = content.get("application/json", {}).get("schema", {})
            if "$ref" not in schema and "properties" not in schema:
                untyped.append((method, path, status, schema))
    assert untyped == []


def test_every_error_is_a_problem(spec: dict[str, Any]) -> None:
    wrong = []
    for method, path, operation in _operations(spec):
        responses = operation["responses"]
        expected = {"500", "503"}
        if (method, path) not in PUBLIC or path == "/metrics":
            expected.add("401")
        if operation.get("requestBody") or any(p["in"] != "path" for p in operation.get("parameters", [])):
            expected.add("422")
        if "{" in path:
            expected.add("404")
        missing = expected - set(responses)
        if missing:
            wrong.append((method, path, "missing", sorted(missing)))
        for status, response in responses.items():
            if status[0] not in "45" or (path, status) == ("/health", "503"):  # health answers its own body
                continue
            if response.get("content") != {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}:
                wrong.append((method, path, status, response.get("content")))
    assert wrong == []


def test_routes_that_refuse_keys_say_so(spec: dict[str, Any]) -> None:
    """Statuses only some routes answer are declared where the code raises them."""
    responses = {(m, p): set(o["responses"]) for m, p, o in _operations(spec)}
    assert "403" in responses[("delete", "/api/v1/keys/{key_id}")]
    assert "409" in responses[("delete", "/api/v1/keys/{key_id}")]
    assert "409" in responses[("post", "/api/v1/contacts")]  # an Idempotency-Key reused with another body
    assert "429" in responses[("post", "/api/v1/otp/send")]
    assert "413" in responses[("post", "/api/v1/messages/bulk")]
    assert "403" not in responses[("get", "/api/v1/contacts")]


# -- live: a client generated from the specification, against a running Herald --------------------------------


@pytest.fixture(scope="module")
def server(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Herald's API on a fresh SQLite database, by uvicorn in a thread, and a tenant's key."""
    tmp = tmp_path_factory.mktemp("contract")
    shutil.copy(sqlite_template, tmp / "herald.db")
    config = make_settings(f"sqlite:///{tmp / 'herald.db'}", tmp)

    async def key() -> str:
        rt = Runtime(config)
        try:
            async with rt.sessions.begin() as session:
                return await create_api_key(session, await get_or_create_tenant(session, "contract"))
        finally:
            await rt.close()

    api_key = asyncio.run(key())
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, run_worker=False), host="127.0.0.1", port=0, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped at start"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield {"base_url": f"http://127.0.0.1:{port}", "key": api_key}
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def generated(server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package ``openapi-python-client`` generates from the served ``/openapi.json`` (offline; no post-hooks,
    which would need ruff on the PATH), imported."""
    work = tmp_path_factory.mktemp("generated")
    (work / "openapi.json").write_text(httpx.get(f"{server['base_url']}/openapi.json").text)
    (work / "config.yaml").write_text("post_hooks: []\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [str(generator), "generate", "--path", "openapi.json", "--output-path", "herald_generated",
         "--meta", "none", "--config", "config.yaml", "--fail-on-warning"],
        cwd=work, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module("herald_generated")
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n == "herald_generated" or n.startswith("herald_generated.")]:
            del sys.modules[name]


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def _client(package: ModuleType, server: dict[str, str]) -> Any:
    return package.AuthenticatedClient(base_url=server["base_url"], token=server["key"])


def test_the_generated_client_parses_a_create(generated: ModuleType, server: dict[str, str]) -> None:
    models = _module(generated, "models")
    create = _module(generated, "api.contacts.create_contact_api_v1_contacts_post")
    with _client(generated, server) as client:
        answer = create.sync_detailed(
            client=client,
            body=models.ContactCreate(name="Ada", addresses=models.ContactCreateAddresses.from_dict({"email": "ada@example.com"}), timezone="Europe/Paris"),
        )  # fmt: skip
    assert answer.status_code == 201
    contact = answer.parsed
    assert isinstance(contact, models.ContactOut)
    assert contact.name == "Ada"
    assert contact.timezone == "Europe/Paris"
    assert contact.addresses.to_dict() == {"email": "ada@example.com"}
    assert json.loads(answer.content)["id"] == contact.id


def test_the_generated_client_pages_through_a_list(generated: ModuleType, server: dict[str, str]) -> None:
    models = _module(generated, "models")
    listing = _module(generated, "api.agents.list_agents_api_v1_agents_get")
    made = {f"pager_{i}" for i in range(5)}
    with httpx.Client(
        base_url=server["base_url"], headers={"Authorization": f"Bearer {server['key']}"}
    ) as http:
        for agent_id in made:
            assert (
                http.post("/api/v1/agents", json={"id": agent_id, "maturity_level": "SUPERVISED"}).status_code
                == 201
            )
    seen: list[str] = []
    cursor: Any = generated.types.UNSET
    pages = 0
    with _client(generated, server) as client:
        while True:
            page = listing.sync(client=client, limit=2, cursor=cursor)
            assert isinstance(page, models.PageAgentOut)
            assert all(isinstance(agent, models.AgentOut) for agent in page.items)
            seen += [agent.id for agent in page.items]
            pages += 1
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    assert made <= set(seen)
    assert len(seen) == len(set(seen))  # no agent twice: the cursor moves on
    assert pages >= 3


def test_the_generated_client_parses_a_422_as_problem_details(
    generated: ModuleType, server: dict[str, str]
) -> None:
    models = _module(generated, "models")
    create = _module(generated, "api.contacts.create_contact_api_v1_contacts_post")
    with _client(generated, server) as client:
        answer = create.sync_detailed(
            client=client, body=models.ContactCreate(name="Bob", timezone="Mars/Olympus")
        )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.parsed
    assert isinstance(problem, models.ProblemDetails)
    assert problem.status == 422
    assert isinstance(problem.detail, str)
    assert "timezone" in problem.detail
    assert [e.field for e in problem.errors] == ["timezone"]


def test_the_generated_client_parses_a_401_as_problem_details(
    generated: ModuleType, server: dict[str, str]
) -> None:
    models = _module(generated, "models")
    listing = _module(generated, "api.contacts.list_contacts_api_v1_contacts_get")
    with generated.AuthenticatedClient(base_url=server["base_url"], token="not-a-key") as client:
        answer = listing.sync_detailed(client=client)
    assert answer.status_code == 401
    assert isinstance(answer.parsed, models.ProblemDetails)
    assert answer.parsed.title == "Unauthorized"


def test_every_bearer_operation_refuses_a_request_without_a_key(
    spec: dict[str, Any], server: dict[str, str]
) -> None:
    """The declared security is the truth: each operation that declares the bearer scheme answers 401 without it."""
    not_refused = []
    with httpx.Client(base_url=server["base_url"]) as http:
        for method, path, operation in _operations(spec):
            if operation["security"] != [{"bearer": []}]:
                continue
            answer = http.request(method, path.replace("{", "").replace("}", ""))
            if answer.status_code != 401:
                not_refused.append((method, path, answer.status_code))
    assert not_refused == []
