"""Fake Microsoft Teams webhooks.

- Workflows (Power Automate / Logic Apps request trigger): ``POST /workflows/{id}/triggers/manual/paths/invoke``
  (and the newer ``/powerautomate/automations/direct/workflows/...`` form), authorised by the ``sig`` query
  parameter; 202 with no body. The real trigger accepts any JSON and a malformed card fails later inside the flow;
  the fake refuses a body that is not the Adaptive Card envelope with 400 so that mistakes show up in tests.
- Legacy Office 365 connector: ``POST /webhookb2/{group}@{tenant}/IncomingWebhook/{id}/{owner}``; 200 with the
  body ``1``, and Teams-side failures wrapped in a 200 whose body is the error text.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from herald.providers.fakebase import FakeState, token_is_valid

WORKFLOW = "teams_workflow"
LEGACY = "teams_webhook"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28 * 1024


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake teams"])

    @api.post("/workflows/{workflow_id}/triggers/{trigger}/paths/invoke")
    @api.post("/powerautomate/automations/direct/workflows/{workflow_id}/triggers/{trigger}/paths/invoke")
    async def invoke_workflow(workflow_id: str, trigger: str, request: Request) -> Response:
        recorded = await state.record(WORKFLOW, request)
        sig = request.query_params.get("sig")
        if not sig:
            return _logic_error(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be authenticated only by Shared Access scheme.",
            )
        if not token_is_valid(sig):
            return _logic_error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided authorization signature is invalid.",
            )
        if not _is_card_envelope(recorded.json):
            return _logic_error(
                400,
                "InvalidRequestContent",
                "The request content is not the Teams message envelope with an Adaptive Card.",
            )
        behaviour = await state.behaviour(WORKFLOW)
        if behaviour.kind == "rate_limited":
            return _logic_error(
                429, "WorkflowRequestsThrottled", "The workflow is throttled; retry after the given delay.",
                headers={"Retry-After": str(int(behaviour.retry_after))},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return _logic_error(
                behaviour.status, "ServiceUnavailable", "The service is temporarily unavailable."
            )
        if behaviour.kind == "permanent":
            return _logic_error(404, "WorkflowNotFound", f"The workflow '{workflow_id}' could not be found.")
        return Response(status_code=202)

    @api.post("/webhookb2/{webhook_path:path}")
    async def legacy_webhook(webhook_path: str, request: Request) -> Response:
        recorded = await state.record(LEGACY, request)
        segments = webhook_path.split("/")
        if "IncomingWebhook" not in segments or not all(token_is_valid(s) for s in segments):
            return _wrapped(401)
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        if recorded.json is None:
            return PlainTextResponse("Bad payload received by generic incoming webhook.", status_code=400)
        if not body.get("text") and not body.get("summary") and not body.get("attachments"):
            return PlainTextResponse("Summary or Text is required.", status_code=400)
        if len(recorded.body.encode()) > MAX_BYTES:
            return _wrapped(413)
        behaviour = await state.behaviour(LEGACY)
        if behaviour.kind == "rate_limited":
            return PlainTextResponse(
                "Too many requests", status_code=429, headers={"Retry-After": str(int(behaviour.retry_after))}
            )
        if behaviour.kind == "server_error":
            return PlainTextResponse("Service Unavailable", status_code=behaviour.status)
        if behaviour.kind == "permanent":
            return _wrapped(400)  # e.g. the channel or the connector was removed
        return PlainTextResponse("1")

    return api


def _is_card_envelope(body: Any) -> bool:
    if not isinstance(body, dict) or body.get("type") != "message":
        return False
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return False
    for attachment in attachments:
        if not isinstance(attachment, dict):
            return False
        content = attachment.get("content")
        if (
            attachment.get("contentType") != ADAPTIVE
            or not isinstance(content, dict)
            or content.get("type") != "AdaptiveCard"
            or not isinstance(content.get("body"), list)
        ):
            return False
    return True


def _logic_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _wrapped(status: int) -> PlainTextResponse:
    """The connector's way of failing: HTTP 200 with Teams' error in the text."""
    return PlainTextResponse(
        f"Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {status} "
        "with ContextId tcid=0,server=fake,cv=fake.0.."
    )
