"""WhatsApp Cloud API adapter against the fake Graph API: request shape, templates, error codes, splitting,
buttons as interactive reply buttons or lists within Meta's limits."""

from __future__ import annotations

import json

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action, ChannelConfig
from herald.providers.fakebase import Behaviour
from herald.providers.whatsapp_cloud.send import WhatsAppCloudChannel, template_of
from tests.unit.providers.conftest import Fake, outbound, send_split

TOKEN = "EAAGfake-whatsapp-access-token"
CREDS = {"access_token": TOKEN, "phone_number_id": "106540352242922"}


def wa(fake: Fake, credentials: dict[str, str] | None = None) -> WhatsAppCloudChannel:
    adapter = fake.adapter("whatsapp_cloud", "whatsapp", credentials or CREDS)
    assert isinstance(adapter, WhatsAppCloudChannel)
    return adapter


async def test_posts_text_message_and_returns_wamid(fake: Fake) -> None:
    wamid = await wa(fake).send(outbound("15551234567", "Hello from Herald", platform="whatsapp"))
    (request,) = fake.requests("whatsapp_cloud")
    assert request.method == "POST"
    assert request.path == "/v21.0/106540352242922/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
        "type": "text", "text": {"body": "Hello from Herald"},
    }  # fmt: skip
    assert wamid.startswith("wamid.")
    assert fake.requests("messenger") == []


async def test_graph_version_is_configurable(fake: Fake) -> None:
    await wa(fake, {**CREDS, "graph_version": "v22.0"}).send(outbound("15551234567", platform="whatsapp"))
    assert fake.requests("whatsapp_cloud")[0].path == "/v22.0/106540352242922/messages"


async def test_template_content_is_sent_as_template_message(fake: Fake) -> None:
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    wamid = await wa(fake).send(
        outbound("15551234567", json.dumps({"template": template}), platform="whatsapp")
    )
    (request,) = fake.requests("whatsapp_cloud")
    assert request.json == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
        "type": "template", "template": template,
    }  # fmt: skip
    assert wamid.startswith("wamid.")


def test_only_a_lone_template_object_counts_as_template() -> None:
    assert template_of('{"template": {"name": "x", "language": {"code": "en"}}}') == {
        "name": "x", "language": {"code": "en"},
    }  # fmt: skip
    assert template_of('{"template": {"name": "x"}, "other": 1}') is None
    assert template_of('{"template": "hello_world"}') is None
    assert template_of("{not json") is None
    assert template_of("template: hello") is None


async def test_bad_token_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="190"):
        await wa(fake, {**CREDS, "access_token": "EAAG-invalid-token"}).send(
            outbound("15551234567", platform="whatsapp")
        )


async def test_undeliverable_recipient_is_permanent(fake: Fake) -> None:
    fake.script("whatsapp_cloud", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="131026"):
        await wa(fake).send(outbound("15551234567", platform="whatsapp"))


async def test_incomplete_template_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="131008"):
        await wa(fake).send(outbound("15551234567", '{"template": {"name": "x"}}', platform="whatsapp"))


async def test_throughput_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("whatsapp_cloud", Behaviour(kind="rate_limited", retry_after=11))
    with pytest.raises(RetryableDeliveryError, match="130429") as caught:
        await wa(fake).send(outbound("15551234567", platform="whatsapp"))
    assert caught.value.retry_after == 11


@pytest.mark.parametrize(("status", "code"), [(503, "graph error 2"), (500, "131000")])
async def test_server_error_is_retryable(fake: Fake, status: int, code: str) -> None:
    fake.script("whatsapp_cloud", Behaviour(kind="server_error", status=status))
    with pytest.raises(RetryableDeliveryError, match=code):
        await wa(fake).send(outbound("15551234567", platform="whatsapp"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("whatsapp_cloud", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await wa(fake).send(outbound("15551234567", platform="whatsapp"))


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, 131056, True), (400, 131000, True), (400, 2, True), (400, 100, False), (400, 131008, False),
        (400, 131047, False), (401, 190, False), (400, 999999, False), (429, 999999, True), (502, 999999, True),
    ],
)  # fmt: skip
async def test_error_codes_decide_the_class(status: int, code: int, retryable: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json={"error": {"message": "m", "type": "OAuthException", "code": code}}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        config = ChannelConfig(id="chn_w", tenant_id="ten_w", platform="whatsapp", provider="whatsapp_cloud",
                               credentials=CREDS)  # fmt: skip
        expected = RetryableDeliveryError if retryable else PermanentDeliveryError
        with pytest.raises(expected, match=str(code)):
            await WhatsAppCloudChannel(config, http).send(outbound("15551234567", platform="whatsapp"))


async def test_long_text_goes_out_as_ordered_parts(fake: Fake) -> None:
    paragraphs = [f"part {n} " + "y" * 3000 for n in range(3)]
    ids = await send_split(wa(fake), outbound("15551234567", "\n".join(paragraphs), platform="whatsapp"))
    requests = fake.requests("whatsapp_cloud")
    assert [r.json["text"]["body"] for r in requests] == paragraphs
    assert len(ids) == 3
    assert all(i.startswith("wamid.") for i in ids)


def test_a_template_is_never_split(fake: Fake) -> None:
    params = [{"type": "text", "text": "p" * 1000} for _ in range(5)]
    template = {
        "name": "long",
        "language": {"code": "en"},
        "components": [{"type": "body", "parameters": params}],
    }
    content = json.dumps({"template": template})
    assert len(content) > 4096
    assert wa(fake).parts_of(content) == [content]
    assert len(wa(fake).parts_of("q" * 5000)) == 2


def test_declares_its_length_limit_and_splits() -> None:
    assert WhatsAppCloudChannel.max_length == 4096
    assert WhatsAppCloudChannel.split_long is True
    assert WhatsAppCloudChannel.default_origin == "https://graph.facebook.com"


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    secrets = {"app_secret": "app-secret-value-1", "verify_token": "verify-token-value-1"}
    adapter = wa(fake, {**CREDS, **secrets})
    assert TOKEN not in repr(adapter)
    assert TOKEN not in repr(adapter.config)
    creds = WhatsAppCloudChannel.credentials_model.model_validate({**CREDS, **secrets})
    for value in (TOKEN, *secrets.values()):
        assert value not in repr(creds)


# -- buttons: interactive reply buttons and lists --

APPROVE = Action("hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a", "Approve", "primary")
REJECT = Action("hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:r", "Reject", "danger")
ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567"}


async def test_up_to_three_actions_are_reply_buttons(fake: Fake) -> None:
    wamid = await wa(fake).send(
        outbound("15551234567", "Deploy v2?", platform="whatsapp", actions=(APPROVE, REJECT))
    )
    (request,) = fake.requests("whatsapp_cloud")
    assert request.json == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Deploy v2?"},
            "action": {
                "buttons": [
                    {
                        "type": "reply",
                        "reply": {"id": "hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a", "title": "Approve"},
                    },
                    {
                        "type": "reply",
                        "reply": {"id": "hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:r", "title": "Reject"},
                    },
                ]
            },
        },
    }
    assert wamid.startswith("wamid.")
    assert WhatsAppCloudChannel.can_update is False  # WhatsApp cannot edit a sent message


async def test_a_template_ignores_actions_its_buttons_are_the_templates(fake: Fake) -> None:
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    content = json.dumps({"template": template})
    await wa(fake).send(outbound("15551234567", content, platform="whatsapp", actions=(APPROVE,)))
    await wa(fake).send(outbound("15551234567", "Deploy?", platform="whatsapp", actions=(APPROVE,)))
    assert [r.json["type"] for r in fake.requests("whatsapp_cloud")] == ["template", "interactive"]


async def test_buttons_keep_a_reply_quoted_and_cut_long_titles_and_bodies(fake: Fake) -> None:
    long = Action("hl:q:later", "Remind me again tomorrow")
    message = outbound(
        "15551234567", "q" * 1500, platform="whatsapp", actions=(APPROVE, long),
        reply_context={"reply_to": "wamid.ASKED"},
    )  # fmt: skip
    await wa(fake).send(message)
    (request,) = fake.requests("whatsapp_cloud")
    assert request.json["context"] == {"message_id": "wamid.ASKED"}
    interactive = request.json["interactive"]
    assert interactive["body"]["text"] == "q" * 1023 + "\u2026"
    assert interactive["action"]["buttons"][1]["reply"] == {
        "id": "hl:q:later",
        "title": "Remind me again tom\u2026",
    }


async def test_four_to_ten_actions_are_a_list(fake: Fake) -> None:
    actions = tuple(Action(f"hl:q:{n}", f"Option {n}") for n in range(4)) + (
        Action("hl:q:long", "Roll back to the previous release"),
    )
    await wa(fake).send(outbound("15551234567", "Which one?", platform="whatsapp", actions=actions))
    (request,) = fake.requests("whatsapp_cloud")
    rows = [{"id": f"hl:q:{n}", "title": f"Option {n}"} for n in range(4)]
    rows.append(
        {
            "id": "hl:q:long",
            "title": "Roll back to the previo\u2026",
            "description": "Roll back to the previous release",
        }
    )
    assert request.json == {
        **ENVELOPE,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Which one?"},
            "action": {"button": "Choose", "sections": [{"title": "Options", "rows": rows}]},
        },
    }


async def test_more_than_ten_actions_or_overlong_ids_are_refused(fake: Fake) -> None:
    eleven = tuple(Action(f"hl:q:{n}", f"Option {n}") for n in range(11))
    with pytest.raises(PermanentDeliveryError, match="at most 10"):
        await wa(fake).send(outbound("15551234567", "Which one?", platform="whatsapp", actions=eleven))
    too_long = tuple(Action("x" * 201 if n == 0 else f"hl:{n}", f"Option {n}") for n in range(4))
    with pytest.raises(PermanentDeliveryError, match="1-200"):
        await wa(fake).send(outbound("15551234567", "Which one?", platform="whatsapp", actions=too_long))
    assert fake.requests("whatsapp_cloud") == []


def _button(n: int, title: str | None = None) -> dict[str, object]:
    return {"type": "reply", "reply": {"id": f"b{n}", "title": title or f"Button {n}"}}


@pytest.mark.parametrize(
    "interactive",
    [
        {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [_button(n) for n in range(4)]}},
        {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [_button(1, "t" * 21)]}},
        {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [_button(1), _button(1)]}},
        {"type": "button", "body": {"text": "p" * 1025}, "action": {"buttons": [_button(1)]}},
        {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "i" * 257, "title": "t"}}]},
        },
        {
            "type": "list",
            "body": {"text": "Pick"},
            "action": {
                "button": "Choose",
                "sections": [
                    {"title": "Options", "rows": [{"id": f"r{n}", "title": "t"} for n in range(11)]}
                ],
            },
        },
        {
            "type": "list",
            "body": {"text": "Pick"},
            "action": {"button": "Choose", "sections": [{"rows": [{"id": "r", "title": "t" * 25}]}]},
        },
    ],
)
async def test_the_fake_refuses_interactive_messages_beyond_metas_limits(
    fake: Fake, interactive: dict[str, object]
) -> None:
    response = await fake.http.post(
        f"{fake.origin}/v21.0/106540352242922/messages",
        json={**ENVELOPE, "type": "interactive", "interactive": interactive},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (131009, "(#131009) Parameter value is not valid")


async def test_a_refused_interactive_message_is_permanent(fake: Fake) -> None:
    # Three distinct labels that cut to the same 20-character title: Meta refuses duplicate titles.
    same = tuple(Action(f"hl:q:{n}", f"Approve for this week {n}") for n in range(3))
    with pytest.raises(PermanentDeliveryError, match="131009"):
        await wa(fake).send(outbound("15551234567", "Which one?", platform="whatsapp", actions=same))
