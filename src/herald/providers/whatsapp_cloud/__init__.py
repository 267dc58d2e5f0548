"""WhatsApp Cloud API (Meta Graph): messages, signed webhooks, status receipts."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.whatsapp_cloud import inbound, receipts
from herald.providers.whatsapp_cloud.send import WhatsAppCloudChannel

PROVIDERS = (
    Provider(
        WhatsAppCloudChannel,
        inbound=inbound.ADAPTER,
        receipts=receipts.parse,
        fake="herald.providers.graph_fake",
    ),
)
