"""Seed 003's usage examples, as the seed writes them, against a running Herald through ``herald.compat.otp``.

Each block below is copied from seed 003's README; the only changes are the import line (``otp_messaging_agent``
becomes ``herald.compat.otp``) and the connection settings, which come from ``HERALD_URL`` and
``HERALD_API_KEY``. The seed's "external API" is the user's own service, so ``requests`` answers with its list.
Twilio is faked behind the runtime's HTTP client, so the code the OTP carried can be read and verified.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from herald.compat.otp import DeliveryReport, IntelligentOTPAgent, MessageRequest, Priority
from herald.runtime import Runtime
from herald.web.api.app import create_app
from tests.conftest import served, use_transport

SEED_IMPORT = "from otp_messaging_agent import IntelligentOTPAgent, MessageRequest, Priority"
OUR_IMPORT = "from herald.compat.otp import IntelligentOTPAgent, MessageRequest, Priority"

QUICK_START = """
from otp_messaging_agent import IntelligentOTPAgent, MessageRequest, Priority

# Initialize and start the agent
agent = IntelligentOTPAgent()
agent.start_processing()

# Send an OTP
message_id = agent.send_otp("+447700900123", user_id="user123")

# Send bulk messages
messages = [
    MessageRequest(
        phone_number="+447700900124",
        message_type="alert",
        content="Security alert!",
        priority=Priority.CRITICAL
    )
]
agent.send_bulk_messages(messages)

# Load from JSON file
agent.load_messages_from_json("sample_messages.json")
"""

FROM_JSON = """
# Automatically load and process messages
count = agent.load_messages_from_json("messages.json")
print(f"Processed {count} messages")
"""

FROM_API = """
import requests

# Fetch data from external API
response = requests.get("https://api.yourapp.com/pending-messages")
messages = response.json()

# Convert to MessageRequest objects and process
for msg_data in messages:
    request = MessageRequest(
        phone_number=msg_data["phone"],
        message_type=msg_data["type"],
        content=msg_data.get("content", ""),
        priority=Priority[msg_data.get("priority", "MEDIUM")]
    )
    agent.send_message(request)
"""

SCHEDULED = """
from datetime import datetime, timedelta

# Schedule messages for future delivery
future_time = datetime.now() + timedelta(hours=2)
request = MessageRequest(
    phone_number="+447700900125",
    message_type="reminder",
    content="Don't forget your appointment!",
    scheduled_for=future_time
)
agent.send_message(request)
"""

METRICS = """
metrics = agent.get_metrics()
print(f"Success Rate: {metrics['database_stats']['success_rate']}")
print(f"Queue Size: {metrics['queue_size']}")
"""

VERIFY = """
success, message = agent.verify_otp("+447700900123", "123456")
if success:
    print("OTP verified successfully!")
else:
    print(f"Verification failed: {message}")
"""

REPORT = """
report = agent.get_delivery_report(message_id)
if report:
    print(f"Status: {report.status}")
    print(f"Channel: {report.channel}")
    print(f"Attempts: {report.attempts}")
"""

PENDING_MESSAGES = [
    {"phone": "+447700900126", "type": "notification", "content": "Your order shipped", "priority": "LOW"},
    {"phone": "+447700900127", "type": "whatsapp", "content": "Package at the door"},
]


def twilio_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"sid": f"SM{len(request.content):08d}", "status": "queued"})


@pytest.fixture
async def herald_url(rt: Runtime) -> AsyncIterator[str]:
    app = create_app(rt.settings, runtime=rt, run_worker=True)
    async with served(app) as url:
        yield url


@pytest.fixture
async def twilio(rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]) -> list[httpx.Request]:
    """A Twilio SMS channel whose requests are recorded (so a test can read the code an OTP carried)."""
    seen = use_transport(rt, twilio_ok)
    body = {"platform": "sms", "provider": "twilio", "name": "twilio sms", "is_default": True, "rate_per_second": 1000,
            "credentials": {"account_sid": "AC12345678", "auth_token": "twilio-auth-token-123",
                            "from_number": "+15017122661"}}  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return seen


@pytest.fixture
def seed_environment(
    herald_url: str, auth: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Connection settings in the environment, the seed's JSON files in the working directory, and the user's
    "external API" answering its pending messages."""
    monkeypatch.setenv("HERALD_URL", herald_url)
    monkeypatch.setenv("HERALD_API_KEY", auth["Authorization"].removeprefix("Bearer "))
    monkeypatch.delenv("HERALD_AGENT_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_messages.json").write_text(json.dumps([
        {"phone_number": "+447700900128", "message_type": "notification", "content": "Welcome!", "priority": "LOW"},
    ]))  # fmt: skip
    (tmp_path / "messages.json").write_text(json.dumps([
        {"phone_number": "+447700900129", "message_type": "sms", "content": "Hi", "priority": "HIGH"},
        {"phone_number": "+447700900130", "message_type": "alert", "content": "Disk full", "priority": "CRITICAL"},
        {"phone_number": "12", "message_type": "alert", "content": "refused: not E.164"},
    ]))  # fmt: skip
    requests = types.ModuleType("requests")
    requests.get = lambda url, **_: types.SimpleNamespace(json=lambda: PENDING_MESSAGES)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "requests", requests)
    return tmp_path


def run(block: str, namespace: dict[str, Any]) -> None:
    """Run a block of the seed's code with the seed's import replaced by Herald's (and nothing else changed)."""
    exec(compile(block.replace(SEED_IMPORT, OUR_IMPORT), "<seed 003>", "exec"), namespace)  # noqa: S102


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def code_sent(requests: list[httpx.Request], phone: str) -> str:
    """The digits of the OTP Twilio was asked to text to ``phone``."""
    for request in requests:
        form = parse_qs(request.content.decode())
        if form.get("To") == [phone] and (found := re.search(r"\d{4,10}", form["Body"][0])):
            return found.group()
    raise AssertionError(f"no code was sent to {phone}")


def seed_session(capsys: pytest.CaptureFixture[str], twilio: list[httpx.Request]) -> None:
    namespace: dict[str, Any] = {}
    run(QUICK_START, namespace)
    agent = namespace["agent"]
    assert isinstance(agent, IntelligentOTPAgent)
    assert agent.agent_id == "otp-agent"  # registered by start_processing
    herald = agent.herald
    assert herald.get_agent("otp-agent").maturity_level == "SUPERVISED"
    message_id = namespace["message_id"]
    assert isinstance(message_id, str)
    assert herald.get_message(message_id).recipient_id == "+447700900123"
    [alert] = namespace["messages"]
    assert isinstance(alert, MessageRequest)
    sent = herald.list_messages(recipient_id="+447700900124").items
    assert [(m.content, m.priority, m.platform) for m in sent] == [("Security alert!", "CRITICAL", "sms")]
    assert [m.content for m in herald.list_messages(recipient_id="+447700900128").items] == ["Welcome!"]

    run(FROM_JSON, namespace)
    assert namespace["count"] == 2  # the item without a valid number is refused, not counted
    assert capsys.readouterr().out == "Processed 2 messages\n"

    run(FROM_API, namespace)
    [notification] = herald.list_messages(recipient_id="+447700900126").items
    assert (notification.priority, notification.governance_metadata) == (
        "LOW",
        {"message_type": "notification"},
    )
    assert herald.list_messages(recipient_id="+447700900127").items[0].platform == "whatsapp"

    run(SCHEDULED, namespace)
    [reminder] = herald.list_messages(recipient_id="+447700900125").items
    assert reminder.status == "queued"
    assert reminder.scheduled_for is not None
    assert 7000 < (_parse(reminder.scheduled_for) - time.time()) < 7300  # two hours from now, local time kept

    wait_for(lambda: herald.get_delivery_report(message_id).status == "sent")
    wait_for(lambda: herald.get_metrics(hours=1).queue.queued == 1)  # type: ignore[union-attr]
    run(METRICS, namespace)
    metrics = namespace["metrics"]
    figures = herald.get_metrics(hours=1)
    assert metrics["database_stats"]["success_rate"] == figures.success_rate
    assert isinstance(metrics["database_stats"]["success_rate"], float)
    assert metrics["queue_size"] == 1  # the reminder, due in two hours
    assert capsys.readouterr().out == f"Success Rate: {figures.success_rate}\nQueue Size: 1\n"

    code = code_sent(twilio, "+447700900123")
    wrong = "".join(str((int(d) + 1) % 10) for d in code)
    run(VERIFY, namespace)  # as written: 123456 is (almost surely) not the code sent
    if code != "123456":
        assert (namespace["success"], namespace["message"]) == (False, "Invalid OTP code")
        assert capsys.readouterr().out == "Verification failed: Invalid OTP code\n"
    run(VERIFY.replace('"123456"', f'"{wrong}"'), namespace)
    assert (namespace["success"], namespace["message"]) == (False, "Invalid OTP code")
    assert capsys.readouterr().out == "Verification failed: Invalid OTP code\n"
    run(VERIFY.replace('"123456"', f'"{code}"'), namespace)
    assert (namespace["success"], namespace["message"]) == (True, "OTP verified successfully")
    assert capsys.readouterr().out == "OTP verified successfully!\n"
    again = agent.verify_otp("+447700900123", code)  # single use: nothing is pending now
    assert again[0] is False
    assert isinstance(again[1], str)

    run(REPORT, namespace)
    report = namespace["report"]
    assert isinstance(report, DeliveryReport)
    assert (report.status, report.channel, report.attempts) == ("sent", "sms", 1)
    assert capsys.readouterr().out == "Status: sent\nChannel: sms\nAttempts: 1\n"
    assert agent.get_delivery_report("msg_nope") is None

    bulk = agent.send_bulk_messages([
        MessageRequest(phone_number="+447700900131", message_type="alert", content="a", priority=Priority.HIGH),
        MessageRequest(phone_number="12", message_type="alert", content="refused"),
        MessageRequest(phone_number="+447700900132", message_type="otp"),
    ])  # fmt: skip
    assert bulk[1] is None
    assert herald.get_message(str(bulk[0])).content == "a"
    assert herald.get_message(str(bulk[2])).recipient_id == "+447700900132"
    agent.stop_processing()


def _parse(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def test_seed_003_examples_run_as_written(
    seed_environment: Path, twilio: list[httpx.Request], capsys: pytest.CaptureFixture[str]
) -> None:
    await asyncio.to_thread(seed_session, capsys, twilio)
