"""Any Apprise URL."""

from __future__ import annotations

from herald.providers.apprise.send import AppriseChannel
from herald.providers.registry import Provider

PROVIDERS = (Provider(AppriseChannel, fake="herald.providers.apprise.fake"),)
