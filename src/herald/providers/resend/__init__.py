"""Resend: emails and Svix-signed webhooks."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.resend import fake, receipts
from herald.providers.resend.send import ResendChannel

PROVIDERS = (Provider(ResendChannel, receipts=receipts.parse, fake=fake.router),)
