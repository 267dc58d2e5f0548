"""Every API request observed: a request id (the caller's when well formed) answered in ``X-Request-ID`` and
carried by the request's log lines with its tenant and message; HTTP request metrics by route template and
status, a latency histogram and build info on ``/metrics``, which ``promtool check metrics`` accepts."""

from __future__ import annotations

import asyncio
import io
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from herald.core import logs
from herald.core.metrics import herald_version
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.web.api.observe import UNMATCHED
from tests.conftest import WEBHOOK_SECRET, make_agent, send_body, use_transport, webhook_channel


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure(json=True, level="INFO", stream=stream)
    yield stream
    logs.reset()


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_request_logs_with_the_request_id_it_answers(
    client: httpx.AsyncClient, auth: dict[str, str], log_lines: io.StringIO
) -> None:
    await make_agent(client, auth, "agent_123", "SUPERVISED")
    response = await client.post("/api/v1/messaging/proactive/send", json=send_body(), headers=auth)
    assert response.status_code == 201, response.text
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    mine = [line for line in parsed(log_lines) if line.get("request_id") == request_id]
    access = [line for line in mine if line["event"] == "request"]
    assert len(access) == 1
    assert access[0]["route"] == "/api/v1/messaging/proactive/send"
    assert access[0]["status"] == 201
    assert access[0]["method"] == "POST"
    assert access[0]["tenant"].startswith("ten")  # the tenant the key belongs to
    assert access[0]["message_id"] == response.json()["id"]
    assert access[0]["agent"] == "agent_123"
    assert "Bearer" not in log_lines.getvalue()
    assert auth["Authorization"].removeprefix("Bearer ") not in log_lines.getvalue()

    # The next request has an id of its own and none of the previous request's context.
    other = await client.get("/health")
    line = next(x for x in parsed(log_lines) if x.get("request_id") == other.headers["x-request-id"])
    assert other.headers["x-request-id"] != request_id
    assert "tenant" not in line
    assert "message_id" not in line


async def test_a_delivery_logs_with_its_message_tenant_and_agent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, log_lines: io.StringIO
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the relay's client broke")

    use_transport(rt, broken)
    await make_agent(client, auth, "agent_123", "AUTONOMOUS")
    await webhook_channel(client, auth)
    sent = await client.post("/api/v1/messaging/proactive/send", json=send_body(send_now=True), headers=auth)
    assert sent.status_code == 201, sent.text
    accepted = next(x for x in parsed(log_lines) if x.get("request_id") == sent.headers["x-request-id"])
    await worker.drain()
    failures = [x for x in parsed(log_lines) if "raised unexpectedly" in x["event"]]
    assert failures
    for line in failures:
        assert line["message_id"] == sent.json()["id"]
        assert line["agent"] == "agent_123"
        assert line["tenant"] == accepted["tenant"]
        assert "request_id" not in line  # the worker's lines are not the request's
    assert WEBHOOK_SECRET.removeprefix("whsec_") not in log_lines.getvalue()


async def test_a_well_formed_incoming_request_id_is_kept_and_a_bad_one_replaced(
    client: httpx.AsyncClient, auth: dict[str, str], log_lines: io.StringIO
) -> None:
    given = "edge-7f3a:42"
    kept = await client.get("/api/v1/messages/nope", headers={**auth, "X-Request-ID": given})
    assert kept.status_code == 404
    assert kept.headers["x-request-id"] == given
    access = [x for x in parsed(log_lines) if x.get("request_id") == given]
    assert [x["route"] for x in access] == ["/api/v1/messages/{message_id}"]
    assert access[0]["message_id"] == "nope"
    for bad in ("", "has space", "x" * 200, "<script>"):
        replaced = await client.get("/health", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def _samples(text: str, name: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{")
    }


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for message_id in ("msg_a", "msg_b", "msg_c"):
        assert (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).status_code == 404
    assert (await client.get("/no/such/path/1")).status_code == 404
    assert (await client.get("/no/such/path/2")).status_code == 404
    assert (await client.get("/api/v1/messages/msg_a")).status_code == 401
    text = (await client.get("/metrics")).text
    counts = _samples(text, "herald_http_requests_total")
    route = "/api/v1/messages/{message_id}"
    assert counts[f'herald_http_requests_total{{method="GET",route="{route}",status="404"}}'] == 3
    assert counts[f'herald_http_requests_total{{method="GET",route="{route}",status="401"}}'] == 1
    assert counts[f'herald_http_requests_total{{method="GET",route="{UNMATCHED}",status="404"}}'] == 2
    assert not any("msg_a" in series or "/no/such" in series for series in counts)  # paths are never labels
    latency = _samples(text, "herald_http_request_duration_seconds_count")
    assert latency[f'herald_http_request_duration_seconds_count{{method="GET",route="{route}"}}'] == 4
    assert 'herald_http_request_duration_seconds_bucket{le="0.005",method="GET",route="' in text
    build = f'herald_build_info{{python="{platform.python_version()}",version="{herald_version()}"}} 1.0'
    assert build in text


async def test_promtool_accepts_the_metrics(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "no promtool: .ci/run installs it from Debian's prometheus package"
        if os.environ.get("CI"):
            pytest.fail(f"promtool must run in CI: {reason}")
        pytest.skip(reason)
    await client.get("/api/v1/messages/msg_a", headers=auth)
    await client.get("/nowhere")
    text = (await client.get("/metrics")).text
    assert "herald_http_requests_total" in text
    result = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
