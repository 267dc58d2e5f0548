"""Inbound messages: each provider's webhook verified and normalised to one :class:`InboundMessage`.

Pure and storage-free: ``INBOUND[channel.provider]`` gives the provider's :class:`InboundAdapter`. For a POST call
``adapter.receive(credentials, request)`` (verify, then handshake, then parse): a :class:`Reply` is sent back as
is; a list of messages is stored, then answered with ``adapter.ack`` when set (any 2xx otherwise). For a GET
(Meta's subscription check) call ``adapter.handshake`` directly. Every failed check raises
:class:`~herald.errors.Unauthorized` (Meta's ``hub.verify_token`` mismatch: :class:`~herald.errors.Forbidden`).
"""

from __future__ import annotations

from herald.conversations.inbound import discord_bot, line, messenger, slack, telegram, twilio, whatsapp_cloud
from herald.conversations.inbound.base import Attachment, Credentials, InboundAdapter, InboundMessage, Reply

INBOUND: dict[str, InboundAdapter] = {
    module.ADAPTER.provider: module.ADAPTER
    for module in (whatsapp_cloud, messenger, slack, telegram, twilio, line, discord_bot)
}

__all__ = ["INBOUND", "Attachment", "Credentials", "InboundAdapter", "InboundMessage", "Reply"]
