"""Microsoft Teams: Workflows and connector webhooks, one fake."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.teams.webhook import TeamsWebhookChannel
from herald.providers.teams.workflow import TeamsWorkflowChannel

PROVIDERS = (
    Provider(TeamsWorkflowChannel, fake="herald.providers.teams.fake"),
    Provider(TeamsWebhookChannel, fake="herald.providers.teams.fake"),
)
