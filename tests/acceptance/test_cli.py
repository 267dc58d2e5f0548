"""The real ``herald`` command as a subprocess: keys, serve (embedded SQLite + dev inbox), and a worker killed
with SIGKILL while it holds leases on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

HERALD = [sys.executable, "-m", "herald"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def env_for(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        HERALD_DATABASE_URL=database_url,
        HERALD_DATA_DIR=str(tmp_path / "var"),
        HERALD_POLL_INTERVAL_SECONDS="0.1",
        HERALD_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    result = subprocess.run(
        [*HERALD, "keys", "create", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("hk_")
    assert " " not in last
    again = subprocess.run(
        [*HERALD, "keys", "create", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert again.stdout.strip().splitlines()[-1] != last


def test_keys_list_and_revoke(tmp_path: Path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")

    def herald(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HERALD, "keys", *args], env=env, capture_output=True, text=True, timeout=60, check=check
        )

    admin = herald("create", "--tenant", "acme", "--name", "ops").stdout.strip().splitlines()[-1]
    reader = (
        herald("create", "--tenant", "acme", "--name", "reader", "--no-admin").stdout.strip().splitlines()[-1]
    )
    herald("create", "--tenant", "other")
    listed = herald("list", "--tenant", "acme").stdout.strip().splitlines()
    assert listed[0].split() == ["id", "tenant", "name", "prefix", "admin", "agent", "created", "revoked"]
    rows = [line.split() for line in listed[1:]]
    assert [(r[1], r[2], r[4], r[7]) for r in rows] == [
        ("acme", "ops", "admin", "-"),
        ("acme", "reader", "-", "-"),
    ]
    assert admin not in "\n".join(listed)
    assert reader not in "\n".join(listed)
    assert rows[0][3] == admin[:10] + "…"
    assert len(herald("list").stdout.strip().splitlines()) == 4  # every tenant's

    revoked = herald("revoke", rows[1][0])
    assert f"revoked {rows[1][0]}" in revoked.stdout
    assert "was already revoked" in herald("revoke", rows[1][0]).stdout
    last = herald("revoke", rows[0][0], check=False)
    assert last.returncode == 1
    assert "last admin key" in last.stderr
    assert f"revoked {rows[0][0]}" in herald("revoke", rows[0][0], "--force").stdout
    after = [line.split() for line in herald("list", "--tenant", "acme").stdout.strip().splitlines()[1:]]
    assert all(r[7] != "-" for r in after)
    missing = herald("revoke", "key_nope", check=False)
    assert (missing.returncode, "no API key" in missing.stderr) == (1, True)


def test_bad_configuration_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    env = env_for(tmp_path, "mysql://nope", HERALD_ENV="staging")
    result = subprocess.run(
        [*HERALD, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "HERALD_DATABASE_URL" in result.stderr
    assert "HERALD_ENV" in result.stderr
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", HERALD_ENV="production")
    result = subprocess.run(
        [*HERALD, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "HERALD_SECRET_KEY" in result.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``herald serve`` on a fresh SQLite file; yields (base URL, the dev key it printed)."""
    port = free_port()
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'var' / 'herald.db'}")
    proc = subprocess.Popen(
        [*HERALD, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    drain = threading.Thread()
    try:
        key = None
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"herald serve exited with {proc.returncode}")
            if line.startswith("Development API key: "):
                key = line.split(": ", 1)[1].strip()
        assert key, "serve did not print a development key"
        drain = threading.Thread(target=proc.stdout.read, daemon=True)  # keep the pipe drained
        drain.start()
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield base, key
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            if drain.is_alive():
                drain.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()


def test_serve_delivers_seed_example_to_the_dev_inbox(served: tuple[str, str]) -> None:
    base, key = served
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{base}/api/v1/messaging/proactive/history", timeout=5).status_code == 401
    body = {
        "agent_id": "agent_123",
        "platform": "slack",
        "recipient_id": "C12345",
        "content": "Hello! I have important updates.",
        "send_now": True,
        "governance_metadata": {"confidence": 0.95, "context": "daily report"},
    }
    response = httpx.post(f"{base}/api/v1/messaging/proactive/send", json=body, headers=headers, timeout=5)
    assert response.status_code == 201, response.text
    message_id = response.json()["id"]
    deadline = time.monotonic() + 15
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not items:
        items = httpx.get(f"{base}/api/v1/devinbox?platform=slack", headers=headers, timeout=5).json()[
            "items"
        ]
        time.sleep(0.1)
    assert [(i["message_id"], i["recipient_id"], i["content"]) for i in items] == [
        (message_id, "C12345", "Hello! I have important updates.")
    ]
    health = httpx.get(f"{base}/health", timeout=5).json()
    assert health["database"] == "ok"
    assert health["workers"] >= 1
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert 'herald_messages_total{platform="slack",status="sent"} 1.0' in metrics


class _Relay(BaseHTTPRequestHandler):
    """Holds every request until released: a provider that hangs, so the worker is killed mid-send."""

    received: list[str] = []  # noqa: RUF012
    release = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append(json.loads(body)["data"]["id"])
        type(self).release.wait(30)
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker that asked was killed

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.postgres_only
def test_worker_killed_holding_leases_loses_nothing(tmp_path: Path, database_url: str) -> None:
    import asyncio

    from herald.pipeline.worker import Worker
    from herald.runtime import Runtime
    from tests.conftest import make_settings, new_tenant

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    _Relay.received = []
    _Relay.release.clear()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"

    async def setup() -> list[str]:
        rt = Runtime(make_settings(database_url, tmp_path))
        app_headers = await new_tenant(rt, "acme")
        from herald.web.api.app import create_app

        app = create_app(rt.settings, runtime=rt, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
            await c.post(
                "/api/v1/agents", json={"id": "bot", "maturity_level": "AUTONOMOUS"}, headers=app_headers
            )
            r = await c.post(
                "/api/v1/channels",
                json={"platform": "slack", "provider": "webhook", "name": "relay", "is_default": True,
                      "credentials": {"url": hook, "secret": "whsec_dGVzdC1zZWNyZXQtMTIzNDU2Nzg5MA=="}},
                headers=app_headers,
            )  # fmt: skip
            assert r.status_code == 201, r.text
            ids = []
            for i in range(3):
                r = await c.post(
                    "/api/v1/messaging/proactive/send",
                    json={
                        "agent_id": "bot",
                        "platform": "slack",
                        "recipient_id": "C12345",
                        "content": f"m{i}",
                    },
                    headers=app_headers,
                )
                ids.append(r.json()["id"])
        await rt.close()
        return ids

    ids = asyncio.run(setup())
    env = env_for(
        tmp_path,
        database_url,
        HERALD_SECRET_KEY=make_settings(database_url, tmp_path).secret_key,
        HERALD_LEASE_SECONDS="2",
    )
    proc = subprocess.Popen(
        [*HERALD, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while len(_Relay.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(_Relay.received) == sorted(ids), "the worker never reached the provider"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    _Relay.release.set()

    async def survive() -> dict[str, str]:
        rt = Runtime(make_settings(database_url, tmp_path))
        try:
            survivor = Worker(rt, worker_id="survivor")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                await survivor.drain()
                from sqlalchemy import select

                from herald.storage.models import Message

                async with rt.sessions() as session:
                    rows = {r.id: r.status for r in await session.execute(select(Message.id, Message.status))}
                if set(rows.values()) == {"sent"}:
                    return rows
                await asyncio.sleep(0.2)
            return rows
        finally:
            await rt.close()

    try:
        statuses = asyncio.run(survive())
    finally:
        server.shutdown()
        server.server_close()
    assert statuses == dict.fromkeys(ids, "sent")
    assert sorted(_Relay.received) == sorted(ids * 2)  # at-least-once: the killed attempt, then the retry


def test_send_takes_its_url_from_herald_url_and_its_key_from_the_dev_key_file(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base, key = served
    assert (tmp_path / "var" / "dev-api-key").read_text().strip() == key  # what serve wrote in dev mode
    path = tmp_path / "one.json"
    path.write_text(json.dumps([{"phone_number": "+447700900123", "content": "hi", "message_type": "alert"}]))
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'var' / 'herald.db'}", HERALD_URL=base)
    env.pop("HERALD_API_KEY", None)
    sent = subprocess.run(
        [*HERALD, "send", "--from-file", str(path)],  # no --url, no --api-key
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "accepted 1, rejected 0"
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused = subprocess.run(
        [*HERALD, "send", "--from-file", str(path)],
        env={**env, "HERALD_URL": nowhere}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2  # it went where HERALD_URL said, where nothing listens
    assert "accepted 0" in refused.stderr


def test_make_run_passes_host_and_port_to_serve() -> None:
    root = Path(__file__).resolve().parents[2]
    planned = subprocess.run(
        ["make", "-n", "-C", str(root), "run", "HOST=0.0.0.0", "PORT=8123"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    serve = [line for line in planned.stdout.splitlines() if "herald serve" in line]
    assert len(serve) == 1
    assert serve[0].endswith("herald serve --host '0.0.0.0' --port '8123'")
    default = subprocess.run(
        ["make", "-n", "-C", str(root), "run"], capture_output=True, text=True, timeout=30, check=True
    )
    assert "herald serve --host '127.0.0.1' --port '8000'" in default.stdout


def test_production_logs_are_json_lines_carrying_the_request_id(tmp_path: Path) -> None:
    """``herald api`` in production: every line on stderr, uvicorn's included, is a JSON object, and the
    request's access line carries the id it was sent with, its route template, and no key."""
    port = free_port()
    env = env_for(
        tmp_path,
        f"sqlite:///{tmp_path / 'h.db'}",
        HERALD_ENV="production",
        HERALD_SECRET_KEY="s" * 40,
    )
    env["HERALD_LOG_LEVEL"] = "INFO"
    subprocess.run([*HERALD, "migrate"], env=env, capture_output=True, timeout=60, check=True)
    proc = subprocess.Popen(
        [*HERALD, "api", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/metrics", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.get(
            f"{base}/api/v1/messages/msg_1",
            headers={"X-Request-ID": "acceptance-1", "Authorization": "Bearer hk_not_a_real_key_123456"},
            timeout=5,
        )
        assert answer.status_code == 401
        assert answer.headers["x-request-id"] == "acceptance-1"
    finally:
        proc.send_signal(signal.SIGTERM)  # (SIGINT ends with click's "Aborted!", which is not a log line)
        _, stderr = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # fails on any other format
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)
    access = [line for line in lines if line.get("request_id") == "acceptance-1"]
    assert [(a["event"], a["route"], a["status"]) for a in access] == [
        ("request", "/api/v1/messages/{message_id}", 401)
    ]
    assert "hk_not_a_real_key" not in stderr
