"""LINE Messaging API: push, signed webhooks."""

from __future__ import annotations

from herald.providers.line import inbound
from herald.providers.line.send import LineChannel
from herald.providers.registry import Provider

PROVIDERS = (Provider(LineChannel, inbound=inbound.ADAPTER, fake="herald.providers.line.fake"),)
