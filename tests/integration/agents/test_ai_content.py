"""AI-written content (seed 004's hybrid): the agent's model personalises a template or writes from the event
type's prompt, and whatever the model does wrong, the template (or fallback text) is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.runtime import Runtime
from tests.conftest import webhook_channel
from tests.integration import test_campaigns as campaigns
from tests.integration.agents.conftest import Fakes, llm_agent, register

PHONE = "+447700900123"
TEMPLATE = "Hi {{ first_name }}, your {{ model }} is due its tune-up on {{ due }}. Reply YES to book."
VARIABLES = {"first_name": "Dana", "model": "EGO LM2135", "due": "14 March"}
RENDERED = "Hi Dana, your EGO LM2135 is due its tune-up on 14 March. Reply YES to book."
PROMPT = "Remind the customer of their yearly tune-up; warm, short, one call to action."
PRICES = {"prompt_price_per_million": 1.0, "completion_price_per_million": 2.0}


def send(agent_id: str, **compose: Any) -> dict[str, Any]:
    return {
        "agent_id": agent_id, "platform": "sms", "recipient_id": PHONE, "content": TEMPLATE,
        "template_variables": VARIABLES,
        "compose": {"event_type": "annual_tuneup", "prompt": PROMPT, "timeout_seconds": 10, **compose},
    }  # fmt: skip


async def sent(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/messaging/proactive/send", json=body, headers=auth)
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


@pytest.fixture
async def sms(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await webhook_channel(client, auth, "sms")


@pytest.mark.usefixtures("sms")
async def test_enhance_personalises_the_rendered_template_and_records_tokens_and_cost(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("writer", **PRICES))
    personal = (
        "Dana, your EGO LM2135 mower has earned its spring tune-up on 14 March! Reply YES and we'll book you."
    )
    fakes.llm.script([{"content": personal, "prompt_tokens": 120, "completion_tokens": 30}])

    message = await sent(client, auth, send("writer"))

    assert message["content"] == personal
    assert message["status"] == "queued"
    assert message["content_path"] == "ai_enhanced"
    assert message["ai_model"] == "fake-model"
    assert (message["ai_prompt_tokens"], message["ai_completion_tokens"]) == (120, 30)
    assert message["ai_cost"] == pytest.approx((120 * 1.0 + 30 * 2.0) / 1_000_000)
    [request] = fakes.llm.requests
    assert request.headers["authorization"] == "Bearer sk-test-123"
    body = request.json
    assert body["model"] == "fake-model"
    assert body["max_tokens"] == 160  # half the SMS limit: 320 characters, two segments
    system, user = body["messages"]
    assert system["role"] == "system"
    assert "personalise" in system["content"]
    assert "at most 320 characters" in system["content"]
    assert system["content"].endswith(PROMPT)
    assert user["role"] == "user"
    assert user["content"].startswith("Event: annual_tuneup\n")
    assert '"first_name": "Dana"' in user["content"]
    assert user["content"].endswith(f"Message:\n{RENDERED}")  # the model sees the template rendered

    report = (await client.get(f"/api/v1/messages/{message['id']}/report", headers=auth)).json()
    assert report["content"] == {
        "path": "ai_enhanced", "model": "fake-model", "prompt_tokens": 120, "completion_tokens": 30,
        "cost": message["ai_cost"],
    }  # fmt: skip


@pytest.mark.usefixtures("sms")
async def test_without_a_template_the_model_writes_from_the_event_prompt(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("writer"))
    written = "Hello Dana! Time for your EGO LM2135's yearly tune-up. Reply YES to book a slot."
    fakes.llm.script([{"content": f'  "{written}"\n'}])  # wrapping quotes and spaces are dropped

    message = await sent(client, auth, send("writer", enhance=False))

    assert message["content"] == written
    assert message["content_path"] == "ai_written"
    assert message["ai_cost"] == 0.0  # no prices configured and none reported
    assert message["ai_completion_tokens"] > 0
    system, user = fakes.llm.requests[0].json["messages"]
    assert system["content"].startswith("You write a sms message to one person")
    assert system["content"].endswith(PROMPT)
    assert "Message:" not in user["content"]  # no template to personalise
    assert "EGO LM2135" in user["content"]


FAILURES: dict[str, list[dict[str, Any]]] = {
    "server error": [{"kind": "server_error", "times": 10}],
    "revoked key": [{"kind": "permanent", "status": 401, "message": "Incorrect API key provided"}],
    "timeout": [{"kind": "timeout", "delay": 10}],
    "malformed": [{"kind": "malformed", "times": 10}],
}
UNUSABLE = {
    "empty": "   ",
    "placeholder": "Hi [Name], your mower is due its tune-up. Reply YES to book.",
    "template syntax": "Hi {{ first_name }}, your mower is due. Reply YES.",
    "refusal": "I'm sorry, but I can't help with writing that message.",
    "over the limit": "Dana, " + "your mower misses you. " * 20,
}


@pytest.mark.usefixtures("sms")
@pytest.mark.parametrize("failure", FAILURES)
async def test_a_failing_model_sends_the_template_and_never_blocks(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes, failure: str
) -> None:
    await register(client, auth, llm_agent("writer", **PRICES))
    fakes.llm.script(FAILURES[failure])

    message = await sent(
        client, auth, {**send("writer"), "compose": {**send("writer")["compose"], "timeout_seconds": 1}}
    )

    assert message["content"] == RENDERED
    assert message["status"] == "queued"
    assert message["content_path"] == "fallback"
    assert (message["ai_prompt_tokens"], message["ai_cost"]) == (0, 0.0)
    assert fakes.llm.requests  # the model was asked


@pytest.mark.usefixtures("sms")
@pytest.mark.parametrize("answer", UNUSABLE)
async def test_an_unusable_answer_sends_the_template_and_counts_the_tokens(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes, answer: str
) -> None:
    await register(client, auth, llm_agent("writer", **PRICES))
    fakes.llm.script([{"content": UNUSABLE[answer], "prompt_tokens": 100, "completion_tokens": 40}])

    message = await sent(client, auth, send("writer"))

    assert message["content"] == RENDERED
    assert message["content_path"] == "fallback"
    assert (message["ai_prompt_tokens"], message["ai_completion_tokens"]) == (100, 40)
    assert message["ai_cost"] == pytest.approx(180 / 1_000_000)


@pytest.mark.usefixtures("sms")
async def test_writing_without_a_template_falls_back_to_the_event_fallback_text(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("writer"))
    fakes.llm.script([{"kind": "server_error", "times": 10}])

    message = await sent(client, auth, send("writer", enhance=False, timeout_seconds=1))

    assert (message["content"], message["content_path"]) == (RENDERED, "fallback")


@pytest.mark.usefixtures("sms")
async def test_an_interns_held_message_shows_the_ai_text_for_approval(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("trainee", level="INTERN"))
    personal = "Dana, your EGO LM2135 is ready for a tune-up on 14 March. Reply YES to book."
    fakes.llm.script([{"content": personal}])

    message = await sent(client, auth, send("trainee"))

    assert message["status"] == "pending_approval"
    queue = (await client.get("/api/v1/messaging/proactive/queue", headers=auth)).json()["items"]
    assert [(m["id"], m["content"], m["content_path"]) for m in queue] == [
        (message["id"], personal, "ai_enhanced")
    ]


@pytest.mark.usefixtures("sms")
async def test_a_student_is_refused_without_asking_the_model(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("pupil", level="STUDENT"))

    response = await client.post("/api/v1/messaging/proactive/send", json=send("pupil"), headers=auth)

    assert response.status_code == 403, response.text
    assert fakes.llm.requests == []


@pytest.mark.usefixtures("sms")
async def test_compose_needs_an_llm_agent_and_plain_sends_record_no_path(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, {"id": "plain", "maturity_level": "AUTONOMOUS"})

    refused = await client.post("/api/v1/messaging/proactive/send", json=send("plain"), headers=auth)
    plain = await sent(client, auth, {**send("plain"), "compose": None})

    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["compose"]
    assert (plain["content"], plain["content_path"], plain["ai_model"]) == (RENDERED, None, None)
    assert fakes.llm.requests == []


async def test_compose_is_refused_per_item_in_bulk(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await register(client, auth, llm_agent("writer"))

    response = await client.post("/api/v1/messages/bulk", json={"messages": [send("writer")]}, headers=auth)

    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["error"]["status"] == 422
    assert item["error"]["field"] == "compose"


async def test_compose_validates_its_fields(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {**send("writer"), "compose": {"event_type": "annual_tuneup", "enhance": False}}

    response = await client.post("/api/v1/messaging/proactive/send", json=body, headers=auth)

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"].startswith("compose")
    assert "prompt" in error["message"]


# -- campaigns: AI text in an INTERN's approval preview, and sent exactly as shown -----------------------------


async def test_intern_campaign_preview_shows_ai_text_and_approval_sends_it_as_shown(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes, rt: Runtime, tmp_path: Path
) -> None:
    await register(client, auth, llm_agent("writer", level="INTERN"))
    source = await campaigns.data_source(client, auth, campaigns.tenant_db(tmp_path / "dealer.db"))
    personal = {
        "Ada": "Ada, spring is here: your mower deserves a season-ready service at Riverside Power.",
        "Bob": "Bob, the mowing season is close. Book your spring service with Riverside Power today.",
        "Cy": "Cy, get your mower ready for spring with a quick service at Riverside Power.",
    }
    fakes.llm.script(
        [{"content": text, "prompt_tokens": 90, "completion_tokens": 20} for text in personal.values()]
    )
    created = await campaigns.create(
        client, auth, campaigns.body(source, agent_id="writer", compose={"enhance": True, "max_length": 200})
    )

    held = await campaigns.run(client, auth, created["id"])

    assert held["status"] == "pending_approval"
    shown = {s["recipient_id"]: s for s in held["preview"]["sample"]}
    assert {s["content"] for s in shown.values()} == set(personal.values())
    assert {s["content_path"] for s in shown.values()} == {"ai_enhanced"}
    assert len(fakes.llm.requests) == 3
    assert await campaigns.messages(rt) == []

    decided = await client.post(
        f"{campaigns.CAMPAIGNS}/{created['id']}/runs/{held['id']}/approve", json={}, headers=auth
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["created"] == 3
    sent = {m.recipient_id: m for m in await campaigns.messages(rt)}
    for recipient, preview in shown.items():  # what the approver read is what goes out
        assert sent[recipient].content == preview["content"]
        assert sent[recipient].content_path == "ai_enhanced"
    assert len(fakes.llm.requests) == 3  # nothing composed again after the approval


async def test_campaign_falls_back_to_the_template_when_the_model_fails(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes, rt: Runtime, tmp_path: Path
) -> None:
    await register(client, auth, llm_agent("writer"))
    source = await campaigns.data_source(client, auth, campaigns.tenant_db(tmp_path / "dealer.db"))
    fakes.llm.script([{"kind": "permanent", "status": 400, "times": 10}])
    created = await campaigns.create(
        client, auth, campaigns.body(source, agent_id="writer", compose={"enhance": True})
    )

    done = await campaigns.run(client, auth, created["id"])

    assert (done["status"], done["created"]) == ("completed", 3)
    ada = next(m for m in await campaigns.messages(rt) if m.recipient_id == "+447700900001")
    assert ada.content_path == "fallback"
    assert ada.content.startswith(
        "Hi Ada, spring is here! Get your your mower season-ready at Riverside Power"
    )
