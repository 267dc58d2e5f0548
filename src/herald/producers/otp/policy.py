"""A tenant's OTP limits: Twilio Verify's defaults, overridden per tenant from ``Tenant.otp_policy``.

Defaults: a code is valid for 10 minutes (ASVS 5.0 6.5.5's ceiling for out-of-band codes), at most 5 checks
per verification, at most 5 sends to one recipient in a sliding 10-minute window, 6 digits, delivered by SMS,
then a voice call, then WhatsApp, then email. ``{}`` in the database means every default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.producers.otp.codes import MAX_LENGTH, MIN_LENGTH

DEFAULT_ROUTE = ("sms", "voice", "whatsapp", "email")
# Where a code can go; the route is a subset of these, in the order to try them.
OTP_PLATFORMS = frozenset(DEFAULT_ROUTE)
# The longest send window a tenant may set; the retention job keeps send records at least this long.
MAX_WINDOW_SECONDS = 86_400


class OtpPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code_length: int = Field(
        default=6, ge=MIN_LENGTH, le=MAX_LENGTH, description="digits when a send names none"
    )
    ttl_seconds: int = Field(default=600, ge=60, le=86_400, description="how long a verification is valid")
    max_checks: int = Field(
        default=5, ge=1, le=20, description="checks per verification, then max_attempts_reached"
    )
    max_sends: int = Field(default=5, ge=1, le=50, description="sends to one recipient per window, then 429")
    send_window_seconds: int = Field(default=600, ge=60, le=MAX_WINDOW_SECONDS)
    route: list[str] = Field(default_factory=lambda: list(DEFAULT_ROUTE), min_length=1)
    template: str | None = Field(
        default=None, max_length=1000, description="message text with {{code}}; default: per locale"
    )

    @field_validator("route")
    @classmethod
    def _known_platforms(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in OTP_PLATFORMS]
        if unknown:
            raise ValueError(f"codes go by {', '.join(DEFAULT_ROUTE)}; not {', '.join(unknown)}")
        if len(set(value)) != len(value):
            raise ValueError("each platform at most once")
        return value


def load_policy(raw: dict[str, Any] | None) -> OtpPolicy:
    return OtpPolicy.model_validate(raw or {})
