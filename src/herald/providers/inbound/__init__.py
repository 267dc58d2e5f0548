"""Inbound messages: each provider's webhook verified and normalised to one :class:`InboundMessage`.

Pure and storage-free: ``herald.providers.inbound_adapter(channel.provider)`` gives the provider's :class:`InboundAdapter`. For a POST call
``adapter.receive(credentials, request)`` (verify, then handshake, then parse): a :class:`Reply` is sent back as
is; a list of messages is stored, then answered with ``adapter.ack`` when set (any 2xx otherwise). For a GET
(Meta's subscription check) call ``adapter.handshake`` directly. Every failed check raises
:class:`~herald.core.errors.Unauthorized` (Meta's ``hub.verify_token`` mismatch: :class:`~herald.core.errors.Forbidden`).
"""

from __future__ import annotations

from herald.providers.inbound.base import Attachment, Credentials, InboundAdapter, InboundMessage, Reply

__all__ = ["Attachment", "Credentials", "InboundAdapter", "InboundMessage", "Reply"]
