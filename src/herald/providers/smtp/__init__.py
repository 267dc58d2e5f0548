"""Any SMTP server (STARTTLS or TLS)."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.smtp.send import SmtpChannel

PROVIDERS = (Provider(SmtpChannel),)
