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
# A mailbox is saved only after its IMAP server answered, and this server has none: its answer's keys are checked
# against MailboxOut in tests/integration/test_mailboxes.py, against a real dovecot.
NEEDS_AN_IMAP_SERVER = {("get", "/api/v1/interfaces/{channel_id}/mailbox")}


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


def test_creates_declare_their_idempotency_key(spec: dict[str, Any]) -> None:
    declared = {
        (m, p)
        for m, p, o in _operations(spec)
        if any(q["name"] == "Idempotency-Key" for q in o.get("parameters", []))
    }
    assert ("post", "/api/v1/messaging/proactive/send") in declared
    assert ("post", "/api/v1/contacts") in declared
    assert all("409" in spec["paths"][p][m]["responses"] for m, p in declared)
    assert len(declared) >= 15


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
    """A create, parsed; sent again with its Idempotency-Key (declared in the spec), the same contact comes back."""
    models = _module(generated, "models")
    create = _module(generated, "api.contacts.create_contact_api_v1_contacts_post")
    body = models.ContactCreate(
        name="Ada",
        addresses=models.ContactCreateAddresses.from_dict({"email": "ada@example.com"}),
        timezone="Europe/Paris",
    )
    with _client(generated, server) as client:
        answer = create.sync_detailed(client=client, body=body, idempotency_key="contract-create-1")
        again = create.sync(client=client, body=body, idempotency_key="contract-create-1")
    assert answer.status_code == 201
    contact = answer.parsed
    assert isinstance(contact, models.ContactOut)
    assert contact.name == "Ada"
    assert contact.timezone == "Europe/Paris"
    assert contact.addresses.to_dict() == {"email": "ada@example.com"}
    assert json.loads(answer.content)["id"] == contact.id
    assert isinstance(again, models.ContactOut)
    assert again.id == contact.id


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


# -- the documented models are the answers, key for key -----------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _mismatches(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Where ``value`` has a key its schema does not name, lacks a required one, or a nested value differs: the
    schema validators clients use let unknown keys through, so a model missing a field would go unnoticed."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        found = [
            _mismatches(spec, option, value, where)
            for option in schema["anyOf"]
            if _fits(spec, option, value)
        ]
        return min(found, key=len) if found else [f"{where}: {value!r} fits none of {schema['anyOf']}"]
    if isinstance(value, dict) and "properties" in schema:
        wrong = [f"{where}.{k}: not in the model" for k in value if k not in schema["properties"]]
        wrong += [f"{where}.{k}: missing" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in schema["properties"]:
                wrong += _mismatches(spec, schema["properties"][key], item, f"{where}.{key}")
        return wrong
    if isinstance(value, list) and "items" in schema:
        return [
            w
            for i, item in enumerate(value)
            for w in _mismatches(spec, schema["items"], item, f"{where}[{i}]")
        ]
    return [] if _fits(spec, schema, value) else [f"{where}: {value!r} is not {schema}"]


def _fits(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    schema = _resolve(spec, schema)
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return isinstance(value, int if kind == "integer" else (int, float)) and not isinstance(value, bool)
    if kind in kinds:
        return isinstance(value, kinds[kind])
    if "anyOf" in schema:
        return any(_fits(spec, option, value) for option in schema["anyOf"])
    return True


# Actions whose answers are checked too, before the lists (which they fill: firings, alerts, executions...).
ACTIONS: list[tuple[str, str, Any]] = [
    ("post", "/api/v1/messaging/schedule/parse-nl", {"schedule": "every weekday at 9am"}),
    ("post", "/api/v1/messaging/schedule/parse-nl", {"schedule": "tomorrow at 10:00"}),
    ("post", "/api/v1/messaging/schedule/_execute-due", None),
    ("post", "/api/v1/monitoring/condition/{monitor_id}/test", None),
    ("post", "/api/proactive/monitors/{monitor_id}/check", None),
    ("post", "/api/v1/monitoring/values", {"name": "queue", "value": 3}),
    ("post", "/api/proactive/triggers/{trigger_id}/fire", {"payload": {"x": 1}}),
    ("post", "/api/proactive/webhooks/{webhook_id}/regenerate-secret", None),
    ("post", "/api/v1/event-subscriptions", {"url": "https://hooks.example/herald"}),
    ("post", "/api/v1/routing-rules", {"agent_id": "fuzz_agent"}),
    ("post", "/api/v1/interfaces/{channel_id}/disable", None),
    ("post", "/api/v1/interfaces/{channel_id}/enable", None),
    ("post", "/api/v1/messages/bulk", {"messages": [
        {"agent_id": "fuzz_agent", "platform": "slack", "recipient_id": "C1", "content": "a"},
        {"agent_id": "fuzz_agent", "platform": "slack", "recipient_id": "C1", "content": "a", "idempotency_key": "k"},
        {"agent_id": "fuzz_agent", "platform": "slack", "recipient_id": "C1", "content": "a", "idempotency_key": "k"},
        {"agent_id": "fuzz_agent", "platform": "nowhere"}]}),
    ("post", "/api/v1/messaging/schedule/{schedule_id}/pause", None),
    ("post", "/api/v1/messaging/schedule/{schedule_id}/resume", None),
    ("post", "/api/v1/monitoring/condition/{monitor_id}/snooze", {"until": None}),
]  # fmt: skip


def test_real_answers_match_their_models_key_for_key(spec: dict[str, Any], server: dict[str, str]) -> None:
    """Actions, then every GET that answers JSON, on seeded objects: each answer has exactly the keys its model
    names (schema validators let unknown keys through, so a model missing a field would go unnoticed)."""
    from tests.contract.test_fuzz import _seed  # one object of each kind, made through the API

    headers = {"Authorization": f"Bearer {server['key']}"}
    ids = _seed(server["base_url"], headers)
    ids["request_id"] = ids["question_id"]
    calls = [(m, p, body) for m, p, body in ACTIONS]
    calls += [
        (m, p, None)
        for m, p, _ in _operations(spec)
        if m == "get" and (m, p) not in NOT_JSON | NEEDS_AN_IMAP_SERVER
    ]
    wrong: dict[str, list[str]] = {}
    checked = set()
    with httpx.Client(base_url=server["base_url"], headers=headers) as http:
        for method, path, body in calls:
            names = [
                p["name"] for p in spec["paths"][path][method].get("parameters", []) if p["in"] == "path"
            ]
            if any(name not in ids for name in names):
                continue
            answer = http.request(method, path.format(**{n: ids[n] for n in names}), json=body)
            assert answer.status_code < 300 or path == "/health", (path, answer.text)  # no worker here: a 503
            documented = spec["paths"][path][method]["responses"][str(answer.status_code)]
            found = _mismatches(spec, documented["content"]["application/json"]["schema"], answer.json(), "")
            if found:
                wrong[f"{method} {path}"] = found
            checked.add((method, path))
    assert wrong == {}
    assert len(checked) > 50
