"""Resend: emails and Svix-signed webhooks."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.resend import receipts
from herald.providers.resend.send import ResendChannel

PROVIDERS = (Provider(ResendChannel, receipts=receipts.parse, fake="herald.providers.resend.fake"),)
