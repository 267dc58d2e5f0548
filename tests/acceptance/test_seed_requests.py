"""Every HTTP request of seeds 000 and 002, as the seeds write them, against a fresh ``herald serve`` (what
``make run`` starts: development mode, a new SQLite file, nothing registered), with only the Authorization header
added. Each request is one test, run in the seeds' order against one server; the checks are the response fields
the seeds document.

The bodies below are copied from the seeds character for character, including seed 000's mis-decoded emoji
("ðŸ“Š" is how that file spells 📊). Where a seed request cannot work as written, because it names an id an
earlier request created (``{message_id}``, ``monitor_abc``, ``trigger-789``...), the id that request returned
is used, as a user would, and a comment says so. Steps a user adds of their own (to have a pending message to
approve) are marked ``USER STEP``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_cli import HERALD, env_for, free_port

Check = Callable[[Any, dict[str, str]], None]


@dataclass(frozen=True)
class Step:
    """One request: ``path`` may name ids saved by earlier steps as ``{name}``; ``body`` is the seed's JSON
    text (a str) or its Python literal (a dict)."""

    name: str
    method: str
    path: str
    body: str | dict[str, Any] | None = None
    status: int = 200
    check: Check | None = None
    save: dict[str, str] = field(default_factory=dict)  # saved name -> key of the response holding it


class Server:
    """A running ``herald serve`` and what the steps have learnt so far."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.ids: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``herald serve`` on a fresh SQLite file, shared by the module's steps in order."""
    tmp_path: Path = tmp_path_factory.mktemp("seeds")
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
        drain = threading.Thread(target=proc.stdout.read, daemon=True)
        drain.start()
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield Server(base, key)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if drain.is_alive():
            drain.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


# -- checks of the documented response fields -----------------------------------------------------------------


def has(*keys: str, **values: Any) -> Check:
    """The response is an object with ``keys`` and the given values."""

    def check(body: Any, ids: dict[str, str]) -> None:
        assert isinstance(body, dict), body
        missing = [k for k in (*keys, *values) if k not in body]
        assert not missing, f"missing {missing} in {body}"
        for key, value in values.items():
            assert body[key] == value, (key, body[key], value)

    return check


def echoes(body_text: str, *keys: str) -> dict[str, Any]:
    """The request's own values of ``keys``: a created object answers what it was given."""
    sent = json.loads(body_text)
    return {k: sent[k] for k in keys}


def listed(ids_key: str | None = None) -> Check:
    """A page of items; with ``ids_key``, the object created earlier is among them."""

    def check(body: Any, ids: dict[str, str]) -> None:
        assert isinstance(body, dict), body
        assert isinstance(body["items"], list), body
        if ids_key is not None:
            assert ids[ids_key] in [item["id"] for item in body["items"]], body

    return check


def all_of(*checks: Check) -> Check:
    def check(body: Any, ids: dict[str, str]) -> None:
        for one in checks:
            one(body, ids)

    return check


def sent_status(body: Any, ids: dict[str, str]) -> None:
    """Seed 000 documents a SUPERVISED agent's message as approved and sent: on its way, not held."""
    assert body["status"] in ("queued", "sending", "sent", "delivered"), body


# -- seed 000: ATOM messaging features guide ----------------------------------------------------------------

SEND_PROACTIVE = """{
  "agent_id": "agent_123",
  "platform": "slack",
  "recipient_id": "C12345",
  "content": "Hello! I have important updates.",
  "send_now": true,
  "governance_metadata": {
    "confidence": 0.95,
    "context": "daily report"
  }
}"""

SCHEDULE_PROACTIVE = """{
  "agent_id": "agent_123",
  "platform": "whatsapp",
  "recipient_id": "15551234567",
  "content": "Reminder: Meeting at 2pm",
  "scheduled_for": "2026-02-04T14:00:00Z"
}"""

APPROVE = """{
  "approver_user_id": "user_456"
}"""

SCHEDULE_CRON = """{
  "agent_id": "agent_123",
  "platform": "telegram",
  "recipient_id": "123456789",
  "template": "Daily report for {{date}}: {{summary}}",
  "schedule_type": "recurring",
  "cron_expression": "0 9 * * *",
  "timezone": "America/New_York",
  "template_variables": {
    "summary": "Sales: $10k, Tasks: 5 completed"
  }
}"""

SCHEDULE_NATURAL = """{
  "agent_id": "agent_123",
  "platform": "discord",
  "recipient_id": "987654321",
  "template": "Weekly summary: {{week}}",
  "schedule_type": "recurring",
  "natural_language_schedule": "every monday at 9am"
}"""

PARSE_NL = """{
  "schedule": "every day at 9am"
}"""

# Seed 000's "Natural Language Examples" table: input, cron expression, description.
NATURAL_LANGUAGE_TABLE = [
    ("every day at 9am", "0 9 * * *", "Daily at 9:00 AM"),
    ("every monday at 2:30pm", "30 14 * * 1", "Weekly on Monday at 2:30 PM"),
    ("hourly", "0 * * * *", "Every hour"),
    ("daily", "0 9 * * *", "Daily at 9:00 AM"),
    ("weekly", "0 9 * * 1", "Weekly on Monday at 9:00 AM"),
    ("monthly", "0 9 1 * *", "Monthly on 1st at 9:00 AM"),
    ("every 6 hours", "0 */6 * * *", "Every 6 hours"),
    ("every friday at 5pm", "0 17 * * 5", "Fridays at 5:00 PM"),
]

CONDITION_CREATE = """{
  "agent_id": "agent_123",
  "name": "High Inbox Alert",
  "condition_type": "inbox_volume",
  "threshold_config": {
    "metric": "unread_count",
    "operator": ">",
    "value": 100
  },
  "platforms": [
    {"platform": "slack", "recipient_id": "C12345"}
  ],
  "check_interval_seconds": 300,
  "alert_template": "âš ï¸ High inbox volume: {{value}} unread messages (threshold: {{threshold}})"
}"""

PRESET_APPLY = """{
  "agent_id": "agent_123",
  "preset_name": "High Inbox Volume",
  "platforms": [
    {"platform": "slack", "recipient_id": "C12345"}
  ]
}"""

COMPOSITE = """{
  "name": "Critical System Alert",
  "condition_type": "composite",
  "composite_logic": "AND",
  "composite_conditions": [
    {
      "condition_type": "inbox_volume",
      "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100}
    },
    {
      "condition_type": "task_backlog",
      "threshold_config": {"metric": "pending_tasks", "operator": ">", "value": 50}
    }
  ],
  "platforms": [
    {"platform": "slack", "recipient_id": "C12345"}
  ]
}"""

# The quick start's Python examples: the ``json=`` argument of each ``requests.post``, as written.
EXAMPLE_1: dict[str, Any] = {
    "agent_id": "agent_reports",
    "platform": "slack",
    "recipient_id": "C12345",
    "content": "ðŸ“Š Daily Report: 15 tasks completed, 0 critical issues",
    "send_now": True,
}
EXAMPLE_2: dict[str, Any] = {
    "agent_id": "agent_reports",
    "platform": "discord",
    "recipient_id": "987654321",
    "template": "ðŸ“… Weekly Summary for {{date}}: {{summary}}",
    "schedule_type": "recurring",
    "natural_language_schedule": "every friday at 5pm",
    "template_variables": {"summary": "52 tasks completed, 3 meetings held"},
}
EXAMPLE_3: dict[str, Any] = {
    "agent_id": "agent_monitor",
    "name": "High Slack Inbox",
    "condition_type": "inbox_volume",
    "threshold_config": {"metric": "unread_count", "operator": ">", "value": 50},
    "platforms": [{"platform": "slack", "recipient_id": "C12345"}],
    "check_interval_seconds": 300,
    "alert_template": "ðŸš¨ {{value}} unread Slack messages!",
}

PROACTIVE = "/api/v1/messaging/proactive"
SCHEDULE = "/api/v1/messaging/schedule"
MONITORING = "/api/v1/monitoring"

MESSAGE_FIELDS = ("id", "agent_id", "platform", "recipient_id", "content", "status", "sent_at")
PRESETS_DOCUMENTED = [
    {"name": "High Inbox Volume", "condition_type": "inbox_volume",
     "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100}, "check_interval_seconds": 300},
    {"name": "Task Backlog Alert", "condition_type": "task_backlog",
     "threshold_config": {"metric": "pending_tasks", "operator": ">=", "value": 50}},
]  # fmt: skip


def presets_documented(body: Any, ids: dict[str, str]) -> None:
    for documented in PRESETS_DOCUMENTED:
        match = [p for p in body["presets"] if p["name"] == documented["name"]]
        assert match, documented["name"]
        assert {k: match[0][k] for k in documented} == documented


def weekly_summary_renders(body: Any, ids: dict[str, str]) -> None:
    """``{{week}}`` is a built-in: the template is accepted and runs every Monday at 9am."""
    assert body["template"] == "Weekly summary: {{week}}"
    assert body["cron_expression"] == "0 9 * * 1"


SEED_000 = [
    Step("send proactive message", "POST", f"{PROACTIVE}/send", SEND_PROACTIVE, 201,
         all_of(has(*MESSAGE_FIELDS, **echoes(SEND_PROACTIVE, "agent_id", "platform", "recipient_id", "content")),
                sent_status)),
    # The seed's scheduled_for (4 February 2026) may be past by now: Herald sends a past time at once.
    Step("schedule proactive message", "POST", f"{PROACTIVE}/schedule", SCHEDULE_PROACTIVE, 201,
         has("id", "status", **echoes(SCHEDULE_PROACTIVE, "agent_id", "platform", "recipient_id", "content"))),
    # USER STEP: approval is for INTERN agents; agent_123 was registered SUPERVISED on first use, so the user
    # makes it an INTERN and sends the seed's message again to have something to approve.
    Step("user: make agent_123 an INTERN", "PATCH", "/api/v1/agents/agent_123", {"maturity_level": "INTERN"}, 200,
         has(maturity_level="INTERN")),
    Step("user: send again, now held", "POST", f"{PROACTIVE}/send", SEND_PROACTIVE, 201,
         has(status="pending_approval"), save={"message_id": "id"}),
    Step("get pending queue", "GET", f"{PROACTIVE}/queue?agent_id=agent_123&limit=100", None, 200,
         listed("message_id")),
    # {message_id}: the held message's id, from the step before.
    Step("approve pending message", "POST", PROACTIVE + "/approve/{message_id}", APPROVE, 200,
         has("id", "status", "approved_by")),
    Step("user: agent_123 back to SUPERVISED", "PATCH", "/api/v1/agents/agent_123",
         {"maturity_level": "SUPERVISED"}, 200),
    Step("get message history", "GET", f"{PROACTIVE}/history?status=sent&limit=100", None, 200, listed()),
    Step("create scheduled message", "POST", f"{SCHEDULE}/create", SCHEDULE_CRON, 201,
         has("id", "next_run", **echoes(SCHEDULE_CRON, "agent_id", "platform", "recipient_id", "template",
                                        "schedule_type", "cron_expression", "timezone")),
         save={"schedule_id": "id"}),
    Step("create with natural language", "POST", f"{SCHEDULE}/create", SCHEDULE_NATURAL, 201,
         all_of(has("id", "next_run"), weekly_summary_renders)),
    Step("parse natural language", "POST", f"{SCHEDULE}/parse-nl", PARSE_NL, 200,
         has(schedule="every day at 9am", cron_expression="0 9 * * *", description="Daily at 9:00 AM")),
    *[
        Step(f"natural language example {text!r}", "POST", f"{SCHEDULE}/parse-nl", {"schedule": text}, 200,
             has(schedule=text, cron_expression=cron, description=description))
        for text, cron, description in NATURAL_LANGUAGE_TABLE
    ],
    Step("list scheduled messages", "GET", f"{SCHEDULE}/list?agent_id=agent_123&active=true", None, 200,
         listed("schedule_id")),
    # {message_id} of the schedule routes: the id the "create scheduled message" step returned.
    Step("pause scheduled message", "POST", SCHEDULE + "/{schedule_id}/pause", None, 200, has(status="paused")),
    Step("resume scheduled message", "POST", SCHEDULE + "/{schedule_id}/resume", None, 200, has(status="active")),
    Step("cancel scheduled message", "DELETE", SCHEDULE + "/{schedule_id}", None, 200),
    Step("get execution history", "GET", f"{SCHEDULE}/history/executions?limit=100", None, 200, listed()),
    Step("execute due", "POST", f"{SCHEDULE}/_execute-due", None, 200, has("sent", "failed", "skipped")),
    Step("create condition monitor", "POST", f"{MONITORING}/condition/create", CONDITION_CREATE, 201,
         has("id", **echoes(CONDITION_CREATE, "agent_id", "name", "condition_type", "threshold_config",
                            "platforms", "check_interval_seconds", "alert_template")),
         save={"monitor_id": "id"}),
    Step("get presets", "GET", f"{MONITORING}/presets", None, 200, presets_documented),
    Step("apply preset", "POST", f"{MONITORING}/presets/apply", PRESET_APPLY, 201,
         has("id", name="High Inbox Volume", agent_id="agent_123", condition_type="inbox_volume")),
    Step("list monitors", "GET", f"{MONITORING}/condition/list?status=active", None, 200, listed("monitor_id")),
    # {monitor_id} (and monitor_abc below): the id "create condition monitor" returned.
    Step("test condition", "POST", MONITORING + "/condition/{monitor_id}/test", None, 200,
         has("monitor_id", "triggered", "current_value", "timestamp", monitor_name="High Inbox Alert",
             condition_type="inbox_volume",
             threshold={"metric": "unread_count", "operator": ">", "value": 100})),
    Step("pause monitor", "POST", MONITORING + "/condition/{monitor_id}/pause", None, 200, has(status="paused")),
    Step("resume monitor", "POST", MONITORING + "/condition/{monitor_id}/resume", None, 200, has(status="active")),
    Step("get alert history", "GET", MONITORING + "/alerts?monitor_id={monitor_id}", None, 200, listed()),
    Step("get monitoring metrics", "GET", f"{MONITORING}/metrics", None, 200,
         has("total_monitors", "active_monitors", "total_alerts", "pending_alerts", "alerts_last_24h")),
    Step("create composite monitor", "POST", f"{MONITORING}/condition/create", COMPOSITE, 201,
         has("id", agent_id=None, **echoes(COMPOSITE, "name", "condition_type", "composite_logic", "platforms"))),
    Step("example 1: daily proactive report", "POST", f"{PROACTIVE}/send", EXAMPLE_1, 201,
         all_of(has(*MESSAGE_FIELDS, agent_id="agent_reports", content=EXAMPLE_1["content"]), sent_status)),
    Step("example 2: scheduled weekly summary", "POST", f"{SCHEDULE}/create", EXAMPLE_2, 201,
         has("id", "next_run", agent_id="agent_reports", cron_expression="0 17 * * 5")),
    Step("example 3: inbox volume monitor", "POST", f"{MONITORING}/condition/create", EXAMPLE_3, 201,
         has("id", agent_id="agent_monitor", alert_template=EXAMPLE_3["alert_template"])),
]  # fmt: skip


# -- seed 002: proactive agent system -----------------------------------------------------------------------

CREATE_MONITOR = """{
  "name": "Stock Price Monitor",
  "agent_id": "trading-agent-123",
  "workspace_id": "ws-456",
  "condition": "AAPL stock price > 150",
  "action": "Send alert and analyze",
  "check_interval": 300
}"""

CREATE_TRIGGER = """{
  "name": "GitHub PR Trigger",
  "workspace_id": "ws-456",
  "trigger_type": "github",
  "config": {
    "repository": "owner/repo",
    "event": "pull_request"
  },
  "agent_id": "code-review-agent",
  "task_template": "Review PR #{pr_number}: {pr_title}"
}"""

CREATE_SCHEDULE = """{
  "name": "Daily Report",
  "workspace_id": "ws-456",
  "agent_id": "report-agent",
  "task_description": "Generate daily metrics report",
  "cron_expression": "0 9 * * *",
  "timezone": "America/New_York"
}"""

CREATE_WEBHOOK = """{
  "workspace_id": "ws-456",
  "name": "Deploy Webhook",
  "trigger_id": "trigger-789"
}"""

CURL_MONITOR = """{
    "name": "API Response Time Monitor",
    "agent_id": "performance-agent",
    "workspace_id": "ws-123",
    "condition": "API response time > 500ms",
    "action": "Investigate slow endpoints",
    "check_interval": 300
  }"""

CURL_FIRE = """{
    "payload": {
      "event": "deployment",
      "version": "v1.2.3"
    }
  }"""

MONITORS = "/api/proactive/monitors"
TRIGGERS = "/api/proactive/triggers"
SCHEDULES = "/api/proactive/schedules"
WEBHOOKS = "/api/proactive/webhooks"
MONITOR_FIELDS = ("id", "name", "agent_id", "workspace_id", "condition", "action", "check_interval", "is_active",
                  "last_check", "last_triggered", "trigger_count")  # fmt: skip
TRIGGER_FIELDS = (
    "id",
    "name",
    "workspace_id",
    "trigger_type",
    "config",
    "agent_id",
    "task_template",
    "is_active",
)
TASK_FIELDS = ("id", "name", "workspace_id", "agent_id", "task_description", "cron_expression", "timezone",
               "is_active", "next_run", "last_run")  # fmt: skip


def webhook_created(body: Any, ids: dict[str, str]) -> None:
    has("id", "url_path", "secret", "webhook_url")(body, ids)
    assert body["webhook_url"].endswith(f"/api/hooks/{body['url_path']}"), body


SEED_002 = [
    Step("create monitor", "POST", MONITORS, CREATE_MONITOR, 201,
         has(*MONITOR_FIELDS, trigger_count=0, is_active=True,
             **echoes(CREATE_MONITOR, "name", "agent_id", "workspace_id", "condition", "action", "check_interval")),
         save={"task_monitor_id": "id"}),
    Step("list monitors", "GET", MONITORS, None, 200, listed("task_monitor_id")),
    # {id}: the monitor "create monitor" returned, for every monitor route below.
    Step("get monitor", "GET", MONITORS + "/{task_monitor_id}", None, 200, has(*MONITOR_FIELDS)),
    # The seed gives PATCH no body; the user changes one of the monitor's documented fields.
    Step("update monitor", "PATCH", MONITORS + "/{task_monitor_id}", {"check_interval": 600}, 200,
         has(check_interval=600)),
    Step("pause monitor", "POST", MONITORS + "/{task_monitor_id}/pause", None, 200, has(is_active=False)),
    Step("resume monitor", "POST", MONITORS + "/{task_monitor_id}/resume", None, 200, has(is_active=True)),
    Step("check monitor now", "POST", MONITORS + "/{task_monitor_id}/check", None, 200, has(*MONITOR_FIELDS)),
    Step("monitor history", "GET", MONITORS + "/{task_monitor_id}/history", None, 200, listed()),
    Step("create trigger", "POST", TRIGGERS, CREATE_TRIGGER, 201,
         has(*TRIGGER_FIELDS, **echoes(CREATE_TRIGGER, "name", "workspace_id", "trigger_type", "config",
                                       "agent_id", "task_template")),
         save={"trigger_id": "id"}),
    Step("list triggers", "GET", TRIGGERS, None, 200, listed("trigger_id")),
    # trigger-123 of the curl example: the trigger "create trigger" returned.
    Step("fire trigger (curl)", "POST", TRIGGERS + "/{trigger_id}/fire", CURL_FIRE, 200, has("id")),
    Step("create schedule", "POST", SCHEDULES, CREATE_SCHEDULE, 201,
         has(*TASK_FIELDS, **echoes(CREATE_SCHEDULE, "name", "workspace_id", "agent_id", "task_description",
                                    "cron_expression", "timezone")),
         save={"task_schedule_id": "id"}),
    Step("list schedules", "GET", SCHEDULES, None, 200, listed("task_schedule_id")),
    Step("run schedule now", "POST", SCHEDULES + "/{task_schedule_id}/run", None, 200),
    Step("pause schedule", "POST", SCHEDULES + "/{task_schedule_id}/pause", None, 200, has(is_active=False)),
    Step("resume schedule", "POST", SCHEDULES + "/{task_schedule_id}/resume", None, 200, has(is_active=True)),
    # trigger-789: the trigger "create trigger" returned.
    Step("create webhook", "POST", WEBHOOKS, CREATE_WEBHOOK, 201, webhook_created, save={"webhook_id": "id"}),
    Step("list webhooks", "GET", WEBHOOKS, None, 200, listed("webhook_id")),
    Step("regenerate webhook secret", "POST", WEBHOOKS + "/{webhook_id}/regenerate-secret", None, 200,
         has("secret")),
    Step("create monitor (curl)", "POST", MONITORS, CURL_MONITOR, 201,
         has(*MONITOR_FIELDS, agent_id="performance-agent", condition="API response time > 500ms")),
    Step("get suggestions", "GET", "/api/proactive/suggestions", None, 200, listed()),
    Step("analyze patterns", "GET", "/api/proactive/patterns", None, 200),
    Step("delete webhook", "DELETE", WEBHOOKS + "/{webhook_id}", None, 204),
    Step("delete schedule", "DELETE", SCHEDULES + "/{task_schedule_id}", None, 204),
    Step("delete trigger", "DELETE", TRIGGERS + "/{trigger_id}", None, 204),
    Step("delete monitor", "DELETE", MONITORS + "/{task_monitor_id}", None, 204),
]  # fmt: skip

# The trigger id in the webhook body is chained like the path ids.
CHAINED_BODIES = {"create webhook": ("trigger-789", "trigger_id")}


def params(prefix: str, steps: list[Step]) -> list[Any]:
    return [pytest.param(step, id=f"{prefix} {step.name}") for step in steps]


def content_of(step: Step, ids: dict[str, str]) -> bytes | None:
    if step.body is None:
        return None
    text = step.body if isinstance(step.body, str) else json.dumps(step.body)
    if step.name in CHAINED_BODIES:
        placeholder, saved = CHAINED_BODIES[step.name]
        text = text.replace(placeholder, ids[saved])
    return text.encode()


@pytest.mark.parametrize("step", [*params("000", SEED_000), *params("002", SEED_002)])
def test_seed_request(server: Server, step: Step) -> None:
    headers = dict(server.headers)
    content = content_of(step, server.ids)
    if content is not None:
        headers["Content-Type"] = "application/json"
    response = httpx.request(
        step.method,
        server.base + step.path.format(**server.ids),
        content=content,
        headers=headers,
        timeout=30,
    )
    assert response.status_code == step.status, response.text
    body = response.json() if response.content else None
    if step.check is not None:
        step.check(body, server.ids)
    for name, key in step.save.items():
        server.ids[name] = body[key]
