"""Teams Workflows adapter against the fake Power Automate trigger: the real flow URL rebased onto the fake, the
Adaptive Card envelope, 202 without an id, error classes, retry-after, length."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound

URL = (
    "https://prod-42.westeurope.logic.azure.com:443/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Wf-Secret-Signature-123"
)
CREDS = {"webhook_url": URL}


async def test_posts_the_adaptive_card_and_returns_the_herald_id(fake: Fake) -> None:
    flow = fake.adapter("teams_workflow", "teams", CREDS)
    message_id = await flow.send(outbound("ignored", "Hello! I have important updates.", platform="teams"))
    (request,) = fake.requests("teams_workflow")
    assert request.path == "/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke"
    assert request.query["sig"] == ["Wf-Secret-Signature-123"]
    assert request.query["api-version"] == ["2016-06-01"]
    assert request.json == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": "Hello! I have important updates.", "wrap": True}],
                },
            }
        ],
    }
    assert message_id == "msg_1"


async def test_power_platform_urls_work_too(fake: Fake) -> None:
    url = (
        "https://default0a1b.2c.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/"
        "9f8e7d/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=abc-123"
    )
    await fake.adapter("teams_workflow", "teams", {"webhook_url": url}).send(outbound("x", platform="teams"))
    (request,) = fake.requests("teams_workflow")
    assert request.path == "/powerautomate/automations/direct/workflows/9f8e7d/triggers/manual/paths/invoke"


async def test_bad_signature_is_permanent(fake: Fake) -> None:
    flow = fake.adapter("teams_workflow", "teams", {"webhook_url": URL.replace("Secret", "invalid")})
    with pytest.raises(PermanentDeliveryError, match="401: DirectApiInvalidAuthorizationSignature"):
        await flow.send(outbound("ignored", platform="teams"))


async def test_deleted_flow_is_permanent(fake: Fake) -> None:
    fake.script("teams_workflow", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="404: WorkflowNotFound"):
        await fake.adapter("teams_workflow", "teams", CREDS).send(outbound("ignored", platform="teams"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("teams_workflow", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("teams_workflow", "teams", CREDS).send(outbound("ignored", platform="teams"))
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("teams_workflow", Behaviour(kind="server_error", status=502))
    with pytest.raises(RetryableDeliveryError, match="502"):
        await fake.adapter("teams_workflow", "teams", CREDS).send(outbound("ignored", platform="teams"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("teams_workflow", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("teams_workflow", "teams", CREDS).send(outbound("ignored", platform="teams"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    flow = fake.adapter("teams_workflow", "teams", CREDS, base_url="http://127.0.0.1:9")
    flow.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await flow.send(outbound("ignored", platform="teams"))
    await flow.http.aclose()


async def test_declares_its_length_limit_and_refuses_an_oversized_card(fake: Fake) -> None:
    from herald.providers.teams.workflow import TeamsWorkflowChannel

    assert TeamsWorkflowChannel.max_length == 28_000
    assert TeamsWorkflowChannel.split_long is False
    with pytest.raises(PermanentDeliveryError, match="28 KB"):
        await fake.adapter("teams_workflow", "teams", CREDS).send(
            outbound("x", "é" * 20_000, platform="teams")
        )
    assert fake.requests("teams_workflow") == []


def test_a_url_without_signature_is_refused() -> None:
    from herald.providers.teams.workflow import TeamsWorkflowCredentials

    with pytest.raises(ValidationError, match="sig"):
        TeamsWorkflowCredentials(webhook_url=URL.split("&sig=", maxsplit=1)[0])
    with pytest.raises(ValidationError, match="https"):
        TeamsWorkflowCredentials(webhook_url=URL.replace("https://", "http://"))


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    from herald.providers.teams.workflow import TeamsWorkflowCredentials

    flow = fake.adapter("teams_workflow", "teams", CREDS)
    assert "Wf-Secret-Signature-123" not in repr(flow)
    assert "Wf-Secret-Signature-123" not in repr(flow.config)
    assert "Wf-Secret-Signature-123" not in repr(TeamsWorkflowCredentials.model_validate(CREDS))
