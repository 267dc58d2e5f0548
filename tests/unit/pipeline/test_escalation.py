"""Where an escalation goes and which receipt it waits for, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from herald.pipeline.escalation import Hop, hops, rule_problem, waits_for
from herald.pipeline.routing.policy import DeliveryPolicy
from herald.storage.models import Contact


def step(platform: str, recipient: str, provider: str = "twilio", simulated: bool = False) -> dict[str, Any]:
    return {"platform": platform, "recipient_id": recipient, "channel_id": None, "provider": provider,
            "simulated": simulated}  # fmt: skip


ADA = Contact(
    id="con_1", tenant_id="t", name="Ada", opt_outs=["whatsapp"],
    addresses={"sms": "+447700900123", "whatsapp": "447700900123", "email": "ada@example.com"},
)  # fmt: skip
POLICY = DeliveryPolicy()


def test_the_next_step_of_the_route_comes_first() -> None:
    plan = [step("sms", "+447700900123"), step("email", "ops@example.com", "smtp")]
    assert hops(plan, 0, None, POLICY, "HIGH") == [Hop("email", "ops@example.com")]
    assert hops(plan, 1, None, POLICY, "HIGH") == []  # sent on the last step: nowhere left


def test_the_contacts_chain_follows_the_current_platform_skipping_opt_outs() -> None:
    # HIGH is sms, whatsapp, email: whatsapp is opted out of, so the SMS escalates to email
    assert hops([step("sms", "+447700900123")], 0, ADA, POLICY, "HIGH") == [Hop("email", "ada@example.com")]
    own_order = Contact(**{**_fields(ADA), "channel_order": ["email", "sms"], "opt_outs": []})
    assert hops([step("email", "ada@example.com")], 0, own_order, POLICY, "LOW") == [
        Hop("sms", "+447700900123")
    ]


def _fields(contact: Contact) -> dict[str, Any]:
    return {k: getattr(contact, k) for k in ("id", "tenant_id", "name", "addresses", "opt_outs")}


@pytest.mark.parametrize(
    ("unless", "route_step", "expected"),
    [
        ("read", step("whatsapp", "+1", "twilio"), "read"),
        ("read", step("sms", "+1", "twilio"), "delivered"),  # Twilio reports SMS reads never
        ("read", step("email", "a@example.com", "sendgrid"), "read"),  # an open
        ("read", step("email", "a@example.com", "smtp"), "delivered"),
        ("read", step("whatsapp", "+1", "devinbox", simulated=True), "delivered"),
        ("delivered", step("whatsapp", "+1", "twilio"), "delivered"),
    ],
)
def test_read_is_waited_for_only_where_the_channel_reports_it(
    unless: str, route_step: dict[str, Any], expected: str
) -> None:
    assert waits_for(unless, route_step) == expected


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"after_minutes": 5, "unless": "read"}, None),
        ({"after_minutes": 0}, "escalation.after_minutes"),
        ({"after_minutes": True}, "escalation.after_minutes"),
        ({"after_minutes": 5, "unless": "opened"}, "escalation.unless"),
        ("soon", "escalation"),
    ],
)
def test_a_stored_rule_is_checked(rule: Any, field: str | None) -> None:
    problem = rule_problem(rule)
    assert (problem[1] if problem else None) == field
