"""Legacy Teams connector adapter against the fake connector: the real URL rebased onto the fake, ``{"text"}``,
the ``1`` answer, errors wrapped in a 200, retry-after, length."""

from __future__ import annotations

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from herald.providers.teams.webhook import classify
from tests.unit.providers.conftest import Fake, outbound

PATH = (
    "/webhookb2/5f2b1c3d-0000-4000-8000-aaaaaaaaaaaa@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/"
    "0123456789abcdefSecret123/9b8a7c6d-0000-4000-8000-bbbbbbbbbbbb"
)
URL = "https://contoso.webhook.office.com" + PATH
CREDS = {"webhook_url": URL}


async def test_posts_text_and_returns_the_herald_id(fake: Fake) -> None:
    hook = fake.adapter("teams_webhook", "teams", CREDS)
    message_id = await hook.send(outbound("ignored", "Hello! I have important updates.", platform="teams"))
    (request,) = fake.requests("teams_webhook")
    assert request.path == PATH
    assert request.json == {"text": "Hello! I have important updates."}
    assert message_id == "msg_1"


async def test_bad_url_is_permanent(fake: Fake) -> None:
    hook = fake.adapter("teams_webhook", "teams", {"webhook_url": URL.replace("Secret", "invalid")})
    with pytest.raises(PermanentDeliveryError, match="HTTP error 401"):
        await hook.send(outbound("ignored", platform="teams"))


async def test_removed_channel_wrapped_in_a_200_is_permanent(fake: Fake) -> None:
    fake.script("teams_webhook", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="Webhook message delivery failed.*HTTP error 400"):
        await fake.adapter("teams_webhook", "teams", CREDS).send(outbound("ignored", platform="teams"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("teams_webhook", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("teams_webhook", "teams", CREDS).send(outbound("ignored", platform="teams"))
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("teams_webhook", Behaviour(kind="server_error", status=503))
    with pytest.raises(RetryableDeliveryError, match="503"):
        await fake.adapter("teams_webhook", "teams", CREDS).send(outbound("ignored", platform="teams"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("teams_webhook", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("teams_webhook", "teams", CREDS).send(outbound("ignored", platform="teams"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    hook = fake.adapter("teams_webhook", "teams", CREDS, base_url="http://127.0.0.1:9")
    hook.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await hook.send(outbound("ignored", platform="teams"))
    await hook.http.aclose()


def test_a_200_that_is_not_1_is_an_error() -> None:
    wrapped = (
        "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {} with ..."
    )
    with pytest.raises(RetryableDeliveryError, match="HTTP error 429"):
        classify(httpx.Response(200, text=wrapped.format(429)), "teams_webhook")
    with pytest.raises(PermanentDeliveryError, match="HTTP error 413"):
        classify(httpx.Response(200, text=wrapped.format(413)), "teams_webhook")
    with pytest.raises(PermanentDeliveryError, match="Summary or Text is required"):
        classify(httpx.Response(400, text="Summary or Text is required."), "teams_webhook")
    with pytest.raises(PermanentDeliveryError, match="empty answer"):
        classify(httpx.Response(200, text=""), "teams_webhook")
    classify(httpx.Response(200, text="1"), "teams_webhook")


def test_declares_its_length_limit() -> None:
    from herald.providers.teams.webhook import TeamsWebhookChannel

    assert TeamsWebhookChannel.max_length == 28_000
    assert TeamsWebhookChannel.split_long is False


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    from herald.providers.teams.webhook import TeamsWebhookCredentials

    hook = fake.adapter("teams_webhook", "teams", CREDS)
    assert "Secret123" not in repr(hook)
    assert "Secret123" not in repr(hook.config)
    assert "Secret123" not in repr(TeamsWebhookCredentials.model_validate(CREDS))
