"""Signed outgoing webhooks (Standard Webhooks)."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.webhook.send import WebhookChannel

PROVIDERS = (Provider(WebhookChannel),)
