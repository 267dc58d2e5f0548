"""One-time passcodes (Twilio Verify's model): send, verify, status, cancel, and the tenant's OTP policy.

No answer ever carries a code. ``verify`` for a recipient with no pending verification is a 404 (as Twilio's
is): it says only that no code is waiting, which the caller, who asked for the code, knows anyway; whether the
person exists is never visible, since Herald keeps no list of people for phones and emails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Forbidden, NotFound, ValidationFailed
from herald.producers.otp import service, texts
from herald.producers.otp.codes import MAX_LENGTH, MIN_LENGTH
from herald.producers.otp.policy import OTP_PLATFORMS, OtpPolicy
from herald.storage.models import OtpVerification
from herald.storage.types import utcnow
from herald.web.api.contract import IDEMPOTENT, errors
from herald.web.api.deps import CurrentPrincipal, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import PriorityName, Strict

router = APIRouter(prefix="/api/v1/otp", tags=["otp"])

_LOCALE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}$"


class _Recipient(Strict):
    recipient: str | None = Field(
        default=None, max_length=320, description="a phone number, an email address or a contact id"
    )
    phone: str | None = Field(default=None, max_length=32, description="E.164, spaces and dashes allowed")
    email: str | None = Field(default=None, max_length=320)
    contact_id: str | None = Field(default=None, max_length=40)

    def target(self) -> service.Recipient:
        return service.recipient_from(self.phone, self.email, self.contact_id, self.recipient)


class OtpSendRequest(_Recipient):
    agent_id: str | None = Field(
        default=None,
        max_length=100,
        description="the agent asking to verify this person: its maturity level governs the code's message "
        "(refused for STUDENT, held for approval for INTERN); none means the tenant's own code",
    )
    channel: str | None = Field(
        default=None, description="sms, voice (or call), whatsapp, email: tried first"
    )
    priority: PriorityName | None = Field(default=None, description="route by the delivery policy instead")
    code_length: int | None = Field(default=None, ge=MIN_LENGTH, le=MAX_LENGTH)
    locale: str | None = Field(default=None, max_length=16, pattern=_LOCALE)
    template: str | None = Field(
        default=None, min_length=1, max_length=1000, description="text with {{code}}"
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = "voice" if value.lower() == "call" else value.lower()
        if value not in OTP_PLATFORMS:
            raise ValueError(f"must be one of {', '.join(sorted(OTP_PLATFORMS))} (or call)")
        return value

    @model_validator(mode="after")
    def _channel_or_priority(self) -> OtpSendRequest:
        if self.channel is not None and self.priority is not None:
            raise ValueError("give channel or priority, not both")
        return self


class OtpVerifyRequest(_Recipient):
    code: str = Field(
        pattern=rf"^\d{{{MIN_LENGTH},{MAX_LENGTH}}}$", description="the digits the person typed"
    )


class OtpOut(BaseModel):
    id: str
    status: str
    channel: str | None
    code_length: int
    locale: str | None
    sends: int
    checks: int
    message_ids: list[str]
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


class OtpCheckOut(OtpOut):
    valid: bool


def otp_out(verification: OtpVerification, **extra: Any) -> dict[str, Any]:
    body = {name: getattr(verification, name) for name in OtpOut.model_fields}
    body["status"] = service.shown_status(verification, utcnow())
    model = OtpCheckOut if "valid" in extra else OtpOut
    return model.model_validate({**body, **extra}).model_dump(mode="json")


@router.get("/policy", response_model=OtpPolicy)
async def get_policy(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        policy = await service.stored_policy(session, principal.tenant_id)
    return policy.model_dump(mode="json")


@router.put("/policy", response_model=OtpPolicy, responses=errors(403))
async def put_policy(body: dict[str, Any], rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Replace the OTP policy; fields left out take Herald's defaults (Twilio Verify's). Admin keys only: the
    limits are security settings."""
    if not principal.is_admin:
        raise Forbidden("changing the OTP policy needs an admin API key")
    try:
        policy = OtpPolicy.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationFailed(str(first["msg"]).removeprefix("Value error, "), field=field) from exc
    if policy.template is not None:
        texts.check_template(policy.template, utcnow(), field="template")
    async with rt.sessions.begin() as session:
        await service.set_policy(session, principal.tenant_id, policy)
    rt.lookups.clear()
    return policy.model_dump(mode="json")


@router.post(
    "/send", status_code=201, response_model=OtpOut, responses=errors(409, 429), openapi_extra=IDEMPOTENT
)
async def send(
    body: OtpSendRequest, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Send a code (201); inside the validity of a pending verification, the same code again. 429 past the
    send limit, with Retry-After."""
    order = service.SendOrder(
        recipient=body.target(), channel=body.channel, priority=body.priority, agent_id=body.agent_id,
        code_length=body.code_length, locale=body.locale, template=body.template,
    )  # fmt: skip

    async def create(session: AsyncSession) -> dict[str, Any]:
        return otp_out(await service.send(rt, session, principal, order))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.post("/verify", response_model=OtpCheckOut, responses=errors(404, 429))
async def verify(body: OtpVerifyRequest, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Check a code: ``valid`` and the status (approved, pending, max_attempts_reached); 404 when no code is
    pending for the recipient. Not idempotent on purpose: every check counts."""
    recipient = body.target()
    async with rt.sessions.begin() as session:
        result = await service.check(rt, session, principal, recipient, body.code)
        answer = None if result.verification is None else otp_out(result.verification, valid=result.valid)
    if answer is None:  # raised after the commit, so an expiry noticed on the way is kept
        raise NotFound(service.NO_PENDING)
    return answer


@router.get("/{verification_id}", response_model=OtpOut)
async def get_verification(
    verification_id: str, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    async with rt.sessions() as session:
        return otp_out(await service.get(session, principal.tenant_id, verification_id))


@router.post("/{verification_id}/cancel", response_model=OtpOut, responses=errors(409))
async def cancel(verification_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return otp_out(await service.cancel(rt, session, principal, verification_id))
