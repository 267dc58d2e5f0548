"""A tenant's delivery policy: which platforms each priority tries, in order, and default quiet hours.

The default is seed 003's: CRITICAL by voice, HIGH by SMS, MEDIUM by WhatsApp, LOW by email, each falling back
along the chain that follows it (seed 004: SMS, then email).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.timezones import check_timezone
from herald.pipeline.routing.quiet_hours import QuietHours

DEFAULT_PRIORITY_ROUTES: dict[str, list[str]] = {
    "CRITICAL": ["voice", "sms", "whatsapp", "email"],
    "HIGH": ["sms", "whatsapp", "email"],
    "MEDIUM": ["whatsapp", "sms", "email"],
    "LOW": ["email"],
}


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority_routes: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PRIORITY_ROUTES))
    quiet_hours: QuietHours | None = None
    timezone: str = "UTC"

    @field_validator("priority_routes")
    @classmethod
    def _known_priorities(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from herald.core.platforms import PLATFORMS

        merged = dict(DEFAULT_PRIORITY_ROUTES)
        for priority, platforms in value.items():
            name = priority.upper()
            if name not in DEFAULT_PRIORITY_ROUTES:
                raise ValueError(f"unknown priority {priority!r}; one of CRITICAL, HIGH, MEDIUM, LOW")
            unknown = [p for p in platforms if p not in PLATFORMS]
            if unknown:
                raise ValueError(f"unknown platform(s) {', '.join(unknown)} for {name}")
            merged[name] = list(platforms)
        return merged

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)


def load_policy(raw: dict[str, Any] | None) -> DeliveryPolicy:
    return DeliveryPolicy.model_validate(raw or {})
