"""Signal through signal-cli's REST API."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.signal.send import SignalCliRestChannel

PROVIDERS = (Provider(SignalCliRestChannel, fake="herald.providers.signal.fake"),)
