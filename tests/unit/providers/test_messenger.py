"""Messenger adapter against the fake Graph API: request shape, id, each error class, retry-after, splitting."""

from __future__ import annotations

import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from herald.providers.messenger.send import MessengerChannel
from tests.unit.providers.conftest import Fake, outbound, send_split

TOKEN = "EAAGfake-page-access-token"
CREDS = {"page_access_token": TOKEN, "page_id": "104729381234567"}


def fb(fake: Fake, credentials: dict[str, str] | None = None) -> MessengerChannel:
    adapter = fake.adapter("messenger", "messenger", credentials or CREDS)
    assert isinstance(adapter, MessengerChannel)
    return adapter


async def test_posts_send_api_message_and_returns_message_id(fake: Fake) -> None:
    message_id = await fb(fake).send(outbound("6541237890123456", "Hello from Herald", platform="messenger"))
    (request,) = fake.requests("messenger")
    assert request.method == "POST"
    assert request.path == "/v21.0/104729381234567/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == {
        "recipient": {"id": "6541237890123456"}, "messaging_type": "UPDATE",
        "message": {"text": "Hello from Herald"},
    }  # fmt: skip
    assert message_id.startswith("m_")
    assert fake.requests("whatsapp_cloud") == []


async def test_graph_fake_scripts_whatsapp_and_messenger_independently(fake: Fake) -> None:
    fake.script("whatsapp_cloud", Behaviour(kind="permanent"))
    assert (await fb(fake).send(outbound("6541237890123456", platform="messenger"))).startswith("m_")
    wa = fake.adapter(
        "whatsapp_cloud",
        "whatsapp",
        {"access_token": "EAAG-wa-token-1", "phone_number_id": "106540352242922"},
    )
    with pytest.raises(PermanentDeliveryError, match="131026"):
        await wa.send(outbound("15551234567", platform="whatsapp"))


async def test_bad_token_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="190"):
        await fb(fake, {**CREDS, "page_access_token": "EAAG-invalid-token"}).send(
            outbound("6541237890123456", platform="messenger")
        )


async def test_person_not_available_is_permanent(fake: Fake) -> None:
    fake.script("messenger", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="551"):
        await fb(fake).send(outbound("6541237890123456", platform="messenger"))


async def test_unknown_recipient_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="No matching user"):
        await fb(fake).send(outbound("UNKNOWN_psid", platform="messenger"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("messenger", Behaviour(kind="rate_limited", retry_after=5))
    with pytest.raises(RetryableDeliveryError, match="613") as caught:
        await fb(fake).send(outbound("6541237890123456", platform="messenger"))
    assert caught.value.retry_after == 5


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("messenger", Behaviour(kind="server_error", status=500))
    with pytest.raises(RetryableDeliveryError, match="HTTP 500"):
        await fb(fake).send(outbound("6541237890123456", platform="messenger"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("messenger", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fb(fake).send(outbound("6541237890123456", platform="messenger"))


async def test_long_text_goes_out_as_ordered_parts(fake: Fake) -> None:
    paragraphs = [f"part {n} " + "z" * 1500 for n in range(4)]
    ids = await send_split(
        fb(fake), outbound("6541237890123456", "\n".join(paragraphs), platform="messenger")
    )
    requests = fake.requests("messenger")
    assert [r.json["message"]["text"] for r in requests] == paragraphs
    assert len(ids) == 4


def test_declares_its_length_limit_and_splits() -> None:
    assert MessengerChannel.max_length == 2000
    assert MessengerChannel.split_long is True
    assert MessengerChannel.default_origin == "https://graph.facebook.com"


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    secrets = {"app_secret": "app-secret-value-1", "verify_token": "verify-token-value-1"}
    adapter = fb(fake, {**CREDS, **secrets})
    assert TOKEN not in repr(adapter)
    assert TOKEN not in repr(adapter.config)
    creds = MessengerChannel.credentials_model.model_validate({**CREDS, **secrets})
    for value in (TOKEN, *secrets.values()):
        assert value not in repr(creds)
