"""Humans in the loop: approvers, approval policies, approval requests, questions, and the email decision page.

Managing approvers and policies needs an admin key: they are the humans' hold over agents, so a key bound to
an agent cannot change who approves it. The decision page (``/approvals/links/{token}``) takes no API key; its
signed link is the credential, and only its POST decides.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Forbidden, RequestError, ValidationFailed
from herald.core.principal import Principal
from herald.humans import decisions, directory, outreach
from herald.storage.models import ApprovalPolicy, Approver, HumanRequest
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import (
    ApprovalPolicyCreate,
    ApprovalPolicyOut,
    ApprovalPolicyPatch,
    ApproverCreate,
    ApproverOut,
    ApproverPatch,
    HumanRequestOut,
    Items,
    Page,
    QuestionCreate,
    page,
)

approvers = APIRouter(prefix="/api/v1/approvers", tags=["humans in the loop"])
policies = APIRouter(prefix="/api/v1/approval-policies", tags=["humans in the loop"])
requests = APIRouter(prefix="/api/v1/approval-requests", tags=["humans in the loop"])
questions = APIRouter(prefix="/api/v1/questions", tags=["humans in the loop"])
links_page = APIRouter(prefix="/approvals/links", tags=["humans in the loop"], include_in_schema=False)


def _require_admin(principal: Principal, what: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"{what} needs an admin API key")


def approver_out(row: Approver) -> dict[str, Any]:
    return ApproverOut.model_validate(row, from_attributes=True).model_dump(mode="json")


def policy_out(row: ApprovalPolicy) -> dict[str, Any]:
    return ApprovalPolicyOut.model_validate(row, from_attributes=True).model_dump(mode="json")


# -- approvers ------------------------------------------------------------------------------------------------


@approvers.post("", status_code=201, response_model=ApproverOut, responses=errors(403))
async def create_approver(
    body: ApproverCreate, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """A person who decides on held messages and answers questions, with addresses in escalation order."""
    _require_admin(principal, "adding an approver")
    async with rt.sessions.begin() as session:
        row = await directory.create_approver(
            session, principal, body.name, [a.model_dump(exclude_none=True) for a in body.addresses]
        )
        return approver_out(row)


@approvers.get("", **answers(Items[ApproverOut]))
async def list_approvers(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return {
            "items": [approver_out(a) for a in await directory.list_approvers(session, principal.tenant_id)]
        }


@approvers.get("/{approver_id}", response_model=ApproverOut)
async def get_approver(approver_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return approver_out(await directory.get_approver(session, principal.tenant_id, approver_id))


@approvers.patch("/{approver_id}", response_model=ApproverOut, responses=errors(403))
async def update_approver(
    approver_id: str, body: ApproverPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    _require_admin(principal, "changing an approver")
    addresses = None if body.addresses is None else [a.model_dump(exclude_none=True) for a in body.addresses]
    async with rt.sessions.begin() as session:
        row = await directory.update_approver(
            session, principal, approver_id, name=body.name, addresses=addresses
        )
        return approver_out(row)


@approvers.delete("/{approver_id}", status_code=204, responses=errors(403))
async def delete_approver(approver_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> None:
    _require_admin(principal, "removing an approver")
    async with rt.sessions.begin() as session:
        await directory.delete_approver(session, principal, approver_id)


# -- policies -------------------------------------------------------------------------------------------------


@policies.post("", status_code=201, response_model=ApprovalPolicyOut, responses=errors(403))
async def create_policy(
    body: ApprovalPolicyCreate, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Send held messages of these agents and priorities to these approvers; the first matching policy applies."""
    _require_admin(principal, "adding an approval policy")
    async with rt.sessions.begin() as session:
        return policy_out(await directory.create_policy(session, principal, body.model_dump()))


@policies.get("", **answers(Items[ApprovalPolicyOut]))
async def list_policies(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return {"items": [policy_out(p) for p in await directory.list_policies(session, principal.tenant_id)]}


@policies.get("/{policy_id}", response_model=ApprovalPolicyOut)
async def get_policy(policy_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return policy_out(await directory.get_policy(session, principal.tenant_id, policy_id))


@policies.patch("/{policy_id}", response_model=ApprovalPolicyOut, responses=errors(403))
async def update_policy(
    policy_id: str, body: ApprovalPolicyPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    _require_admin(principal, "changing an approval policy")
    async with rt.sessions.begin() as session:
        row = await directory.update_policy(
            session, principal, policy_id, body.model_dump(exclude_unset=True)
        )
        return policy_out(row)


@policies.delete("/{policy_id}", status_code=204, responses=errors(403))
async def delete_policy(policy_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> None:
    _require_admin(principal, "removing an approval policy")
    async with rt.sessions.begin() as session:
        await directory.delete_policy(session, principal, policy_id)


# -- requests and questions -----------------------------------------------------------------------------------


async def requests_out(session: AsyncSession, rows: list[HumanRequest]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    copies = await outreach.deliveries_of(session, ids)
    votes = await outreach.votes_of(session, ids)
    return [
        HumanRequestOut.model_validate(
            {**{c: getattr(r, c) for c in HumanRequestOut.model_fields if c not in ("deliveries", "votes")},
             "deliveries": copies[r.id], "votes": votes[r.id]}
        ).model_dump(mode="json")
        for r in rows
    ]  # fmt: skip


@requests.get("", **answers(Page[HumanRequestOut]))
async def list_requests(
    rt: RuntimeDep, principal: CurrentPrincipal, kind: str | None = None, status: str | None = None,
    limit: Limit = 100, cursor: Cursor = None,
) -> dict[str, Any]:  # fmt: skip
    """Approval requests and questions, newest first, with where each copy went and who answered."""
    async with rt.sessions() as session:
        rows = await outreach.list_requests(
            session, principal.tenant_id, kind=kind, status=status, limit=limit, cursor=cursor
        )
        return page(await requests_out(session, rows), limit)


@requests.get("/{request_id}", response_model=HumanRequestOut)
async def get_request(request_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        row = await outreach.get_request(session, principal.tenant_id, request_id)
        return (await requests_out(session, [row]))[0]


@questions.post(
    "", status_code=201, response_model=HumanRequestOut, responses=errors(403, 409), openapi_extra=IDEMPOTENT
)
async def ask(
    body: QuestionCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """An agent asks people a question; the answer (or the timeout) goes to the agent's signed callback and is
    on ``GET /api/v1/questions/{id}``."""
    direct = None
    if body.platform or body.recipient_id or body.contact_id:
        direct = {k: v for k, v in (("platform", body.platform), ("recipient_id", body.recipient_id),
                                    ("contact_id", body.contact_id), ("channel_id", body.channel_id)) if v}  # fmt: skip
        if not body.contact_id and not (body.platform and body.recipient_id):
            raise ValidationFailed(
                "name a contact_id, or a platform and a recipient_id", field="recipient_id"
            )

    async def create(session: AsyncSession) -> dict[str, Any]:
        asked = await outreach.ask(
            rt, session, principal, agent_id=body.agent_id, text=body.question, options=body.options,
            approver_ids=body.approver_ids, direct=direct, timeout_seconds=body.timeout_seconds,
            escalate_to=body.escalate_to,
        )  # fmt: skip
        return (await requests_out(session, [asked]))[0]

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@questions.get("", **answers(Page[HumanRequestOut]))
async def list_questions(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    status: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await outreach.list_requests(
            session, principal.tenant_id, kind=outreach.QUESTION, status=status, limit=limit, cursor=cursor
        )
        return page(await requests_out(session, rows), limit)


@questions.get("/{question_id}", response_model=HumanRequestOut)
async def get_question(question_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        row = await outreach.get_question(session, principal.tenant_id, question_id)
        return (await requests_out(session, [row]))[0]


# -- the email decision page ----------------------------------------------------------------------------------


@links_page.get("/{token}", response_class=HTMLResponse)
async def confirm(token: str, rt: RuntimeDep) -> HTMLResponse:
    """What the link opens: the request and a form. Opening it decides nothing (mail scanners open links)."""
    try:
        found = await decisions.linked(rt, token)
    except RequestError as exc:
        return _page("This link does not work", exc.detail, status=exc.status)
    request = found.request
    if not found.open:
        return _page("Already settled", decisions.outcome_line(request), status=409)
    body = f"<pre>{html.escape(found.shown)}</pre>"
    if request.kind == outreach.APPROVAL:
        form = ('<label>Reason (for a rejection)<br><textarea name="reason" rows="3" cols="60"></textarea></label>'
                '<p><button name="decision" value="approve">Approve</button> '
                '<button name="decision" value="reject">Reject</button></p>')  # fmt: skip
    else:
        options = "".join(f'<button name="option" value="{i}">{html.escape(o)}</button> '
                          for i, o in enumerate(request.options, start=1))  # fmt: skip
        form = ('<label>Your answer<br><textarea name="answer" rows="4" cols="60"></textarea></label>'
                f'<p>{options}<button name="decision" value="answer">Send answer</button></p>')  # fmt: skip
    title = "Approval needed" if request.kind == outreach.APPROVAL else "A question for you"
    return _page(title, f'{body}<form method="post">{form}</form>', raw=True)


@links_page.post("/{token}", response_class=HTMLResponse)
async def decide(
    token: str, rt: RuntimeDep, decision: str = Form(default="answer", max_length=16),
    reason: str = Form(default="", max_length=2000), answer: str = Form(default="", max_length=10_000),
    option: int | None = Form(default=None, ge=1, le=10),
) -> HTMLResponse:  # fmt: skip
    """The page's POST: the decision or the answer, once per link."""
    try:
        outcome = await decisions.by_link(rt, token, decision=decision, reason=reason.strip() or None,
                                          text=answer.strip(), option=option)  # fmt: skip
    except RequestError as exc:
        return _page("This link does not work", exc.detail, status=exc.status)
    status = 200 if outcome.status in ("decided", "counted", "answered") else 409
    if outcome.status == "refused":
        status = 422
    return _page("Thank you" if status == 200 else "Not taken", outcome.text, status=status)


def _page(title: str, body: str, *, status: int = 200, raw: bool = False) -> HTMLResponse:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><meta name='robots' content='noindex'>"
        f"<title>{html.escape(title)} · Herald</title></head><body><h1>{html.escape(title)}</h1>{content}</body></html>",
        status_code=status,
        headers={"cache-control": "no-store", "referrer-policy": "no-referrer"},
    )
