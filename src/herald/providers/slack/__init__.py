"""Slack: chat.postMessage with buttons and chat.update, signed Events API and interactivity requests, fake Web API."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.slack import inbound
from herald.providers.slack.send import SlackChannel

PROVIDERS = (Provider(SlackChannel, inbound=inbound.ADAPTER, fake="herald.providers.slack.fake"),)
