"""Twilio: SMS, WhatsApp and voice; inbound messages and status callbacks share one signature."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.twilio import inbound, receipts
from herald.providers.twilio.send import TwilioChannel

PROVIDERS = (
    Provider(
        TwilioChannel, inbound=inbound.ADAPTER, receipts=receipts.parse, fake="herald.providers.twilio.fake"
    ),
)
