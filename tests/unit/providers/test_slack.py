"""Slack adapter against the fake Slack: request shape, id, each error class, retry-after, length."""

from __future__ import annotations

import json

import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound

CREDS = {"bot_token": "xoxb-test-token-123"}


async def test_posts_chat_post_message_and_returns_ts(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    ts = await slack.send(outbound("C12345", "Hello! I have important updates."))
    (request,) = fake.requests("slack")
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-test-token-123"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.json == {"channel": "C12345", "text": "Hello! I have important updates."}
    assert ts.count(".") == 1


async def test_every_call_names_the_utf8_charset_and_non_ascii_text_arrives_intact(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    await slack.send(outbound("C12345", "Olá, Zoë: déploiement ✓ 🚀"))
    await slack.update_sent("U061F7AUR", "1700000000.000001", "Approuvé ✓")
    requests = fake.requests("slack")
    assert [r.headers["content-type"] for r in requests] == ["application/json; charset=utf-8"] * 3
    assert requests[0].json["text"] == "Olá, Zoë: déploiement ✓ 🚀"
    assert requests[2].json["text"] == "Approuvé ✓"


@pytest.mark.parametrize(
    ("content_type", "error"),
    [("application/json", "missing_charset"), ("text/plain; charset=utf-8", "invalid_form_data")],
)
@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update", "conversations.open"])
async def test_the_fake_refuses_json_without_the_charset(
    fake: Fake, method: str, content_type: str, error: str
) -> None:
    answer = await fake.http.post(
        f"{fake.origin}/api/{method}",
        content=b'{"channel":"C12345","text":"Hi","ts":"1700000000.000001","users":"U061F7AUR"}',
        headers={"authorization": "Bearer xoxb-test-token-123", "content-type": content_type},
    )
    assert answer.json() == {"ok": False, "error": error}
    form = await fake.http.post(
        f"{fake.origin}/api/{method}",
        data={"channel": "C12345", "text": "Hi", "ts": "1700000000.000001", "users": "U061F7AUR"},
        headers={"authorization": "Bearer xoxb-test-token-123"},
    )
    assert form.json()["ok"] is True


async def test_bad_token_is_permanent(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", {"bot_token": "xoxb-invalid-token"})
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        await slack.send(outbound("C12345"))


async def test_unknown_channel_is_permanent(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="channel_not_found"):
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="server_error", status=502))
    with pytest.raises(RetryableDeliveryError, match="502"):
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    import httpx

    slack = fake.adapter("slack", "slack", CREDS, base_url="http://127.0.0.1:9")
    slack.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await slack.send(outbound("C12345"))
    await slack.http.aclose()


def test_declares_its_length_limit() -> None:
    from herald.providers.slack.send import SlackChannel

    assert SlackChannel.max_length == 40_000


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    assert "xoxb-test-token-123" not in repr(slack)
    assert "xoxb-test-token-123" not in repr(slack.config)


APPROVE = Action("hl:req_01JXYZ:a", "Approve", "primary")
DENY = Action("hl:req_01JXYZ:d", "Deny", "danger")
LATER = Action("hl:req_01JXYZ:l", "Ask me later", "secondary")


async def test_actions_go_out_as_block_kit_buttons(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    await slack.send(outbound("C12345", "plain"))
    ts = await slack.send(outbound("C12345", "Deploy *api* to prod?", actions=(APPROVE, DENY, LATER)))
    plain, request = fake.requests("slack")
    assert plain.json == {"channel": "C12345", "text": "plain"}
    assert request.path == "/api/chat.postMessage"
    assert request.json == {
        "channel": "C12345",
        "text": "Deploy *api* to prod?",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy *api* to prod?"}},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Approve"},
                     "value": "hl:req_01JXYZ:a", "action_id": "hl:req_01JXYZ:a", "style": "primary"},
                    {"type": "button", "text": {"type": "plain_text", "text": "Deny"},
                     "value": "hl:req_01JXYZ:d", "action_id": "hl:req_01JXYZ:d", "style": "danger"},
                    {"type": "button", "text": {"type": "plain_text", "text": "Ask me later"},
                     "value": "hl:req_01JXYZ:l", "action_id": "hl:req_01JXYZ:l"},
                ],
            },
        ],
    }  # fmt: skip
    assert ts.count(".") == 1


async def test_long_content_with_actions_takes_several_sections_and_long_labels_are_cut(fake: Fake) -> None:
    content = "\n".join(f"line {n} " + "x" * 990 for n in range(5))  # about 5,000 characters
    actions = (
        Action("hl:req_01JXYZ:a", "A" * 100),
        *(Action(f"hl:req_01JXYZ:{n}", str(n)) for n in range(30)),
    )
    await fake.adapter("slack", "slack", CREDS).send(outbound("C12345", content, actions=actions))
    (request,) = fake.requests("slack")
    blocks = request.json["blocks"]
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) == 2
    assert all(len(text) <= 3_000 for text in sections)
    assert "\n".join(sections) == content
    assert request.json["text"] == content
    rows = [b["elements"] for b in blocks if b["type"] == "actions"]
    assert [len(row) for row in rows] == [25, 6]
    assert rows[0][0]["text"]["text"] == "A" * 74 + "…"


async def test_update_sent_replaces_the_text_and_drops_the_buttons(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    assert slack.can_update is True
    ts = await slack.send(outbound("C12345", "Deploy?", actions=(APPROVE, DENY)))
    await slack.update_sent("C12345", ts, "Deploy? *Approved by Ana*")
    _, request = fake.requests("slack")
    assert request.path == "/api/chat.update"
    assert request.headers["authorization"] == "Bearer xoxb-test-token-123"
    assert request.json == {
        "channel": "C12345",
        "ts": ts,
        "text": "Deploy? *Approved by Ana*",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Deploy? *Approved by Ana*"}}],
    }


async def test_update_sent_errors_are_classed_like_send(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    with pytest.raises(PermanentDeliveryError, match="message_not_found"):
        await slack.update_sent("C12345", "not-a-ts", "Approved")
    fake.script("slack", Behaviour(kind="rate_limited", retry_after=3))
    with pytest.raises(RetryableDeliveryError) as caught:
        await slack.update_sent("C12345", "1700000000.000001", "Approved")
    assert caught.value.retry_after == 3
    bad = fake.adapter("slack", "slack", {"bot_token": "xoxb-invalid-token"})
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        await bad.update_sent("C12345", "1700000000.000001", "Approved")


async def test_the_fake_refuses_malformed_blocks(fake: Fake) -> None:
    blocks = [
        {
            "type": "actions",
            "elements": [{"type": "button", "text": "Approve", "value": "v", "action_id": "v"}],
        }
    ]
    answer = await fake.http.post(
        f"{fake.origin}/api/chat.postMessage",
        content=json.dumps({"channel": "C12345", "text": "Deploy?", "blocks": blocks}),
        headers={
            "authorization": "Bearer xoxb-test-token-123",
            "content-type": "application/json; charset=utf-8",
        },
    )
    assert answer.json() == {"ok": False, "error": "invalid_blocks"}


async def test_update_sent_to_a_user_finds_the_dm_first(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    await slack.update_sent("U061F7AUR", "1700000000.000001", "Approved by Ana")
    opened, updated = fake.requests("slack")
    assert (opened.path, opened.json) == ("/api/conversations.open", {"users": "U061F7AUR"})
    assert updated.path == "/api/chat.update"
    assert (updated.json["channel"], updated.json["ts"]) == ("D061F7AUR", "1700000000.000001")
