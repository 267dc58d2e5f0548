"""SendGrid: mail send and the signed Event Webhook."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.sendgrid import receipts
from herald.providers.sendgrid.send import SendGridChannel

PROVIDERS = (Provider(SendGridChannel, receipts=receipts.parse, fake="herald.providers.sendgrid.fake"),)
