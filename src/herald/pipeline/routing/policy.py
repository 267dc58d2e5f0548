"""A tenant's delivery policy: which platforms each priority tries, in order, how that order is chosen, and
default quiet hours.

The default is seed 003's: CRITICAL by voice, HIGH by SMS, MEDIUM by WhatsApp, LOW by email, each falling back
along the chain that follows it (seed 004: SMS, then email). ``channel_choice: measured`` lets Herald reorder a
contact's channels by how they have been delivering (see :mod:`herald.pipeline.routing.measured`), the table
staying the prior; ``fixed``, the default, keeps the table's order as it is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.timezones import check_timezone
from herald.pipeline.routing.quiet_hours import QuietHours

DEFAULT_PRIORITY_ROUTES: dict[str, list[str]] = {
    "CRITICAL": ["voice", "sms", "whatsapp", "email"],
    "HIGH": ["sms", "whatsapp", "email"],
    "MEDIUM": ["whatsapp", "sms", "email"],
    "LOW": ["email"],
}


class MeasuredTuning(BaseModel):
    """How measured channel choice weighs what it has seen. The defaults suit most tenants: a day's window,
    one message in twenty exploring, and the table worth twenty observations."""

    model_config = ConfigDict(extra="forbid")

    window_hours: int = Field(default=24, ge=1, le=24 * 30, description="how far back attempts count")
    explore_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=0.5,
        description="share of messages that try a channel other than the best first",
    )
    prior_weight: float = Field(
        default=20.0,
        gt=0.0,
        le=1000.0,
        description="how many observations the priority table's order is worth",
    )
    latency_weight: float = Field(
        default=0.1, ge=0.0, le=1.0, description="score lost as time to delivery grows (at most this much)"
    )
    cost_weight: float = Field(
        default=0.1, ge=0.0, le=1.0, description="score lost as cost per message grows (at most this much)"
    )


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority_routes: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PRIORITY_ROUTES))
    quiet_hours: QuietHours | None = None
    timezone: str = "UTC"
    channel_choice: Literal["fixed", "measured"] = Field(
        default="fixed",
        description="fixed: a contact's channels in the table's order; measured: ranked by delivery success, "
        "time to delivery and cost over a sliding window, the table as the prior",
    )
    measured: MeasuredTuning = Field(default_factory=MeasuredTuning)

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
