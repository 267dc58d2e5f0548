"""The platforms Herald speaks for, and what a recipient id looks like on each (a wrong form is a 422 when the
message is accepted). A recipient's form belongs to the platform, whichever provider carries it."""

from __future__ import annotations

import re

PLATFORMS = frozenset(
    {
        "slack", "discord", "teams", "whatsapp", "telegram", "google_chat", "signal",
        "messenger", "line", "sms", "voice", "email", "webhook",
    }
)  # fmt: skip

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "sms": (_E164, "an E.164 phone number such as +447700900123"),
    "voice": (_E164, "an E.164 phone number such as +447700900123"),
    "whatsapp": (
        re.compile(r"^\+?[1-9][0-9]{7,14}$"),
        "a phone number in international form such as 15551234567",
    ),
    "email": (re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), "an email address"),
    "telegram": (
        re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$"),
        "a numeric chat id or @channelusername",
    ),
    "slack": (re.compile(r"^[CDGUW][A-Z0-9]{2,}$"), "a Slack channel or user id such as C12345"),
    "discord": (re.compile(r"^[0-9]{3,20}$"), "a numeric Discord channel id"),
    "line": (
        re.compile(r"^[UCR][0-9a-f]{32}$"),
        "a LINE user, group or room id (U, C or R and 32 hex digits)",
    ),
    "signal": (re.compile(r"^(\+[1-9][0-9]{7,14}|group\.[A-Za-z0-9+/=]+)$"), "an E.164 number or group.<id>"),
    "messenger": (re.compile(r"^[0-9]{5,30}$"), "a numeric page-scoped id (PSID)"),
}


def recipient_problem(platform: str, recipient_id: str) -> str | None:
    """None when ``recipient_id`` has the form ``platform`` expects, else what form it should have."""
    form = _FORMS.get(platform)
    if form is None or form[0].match(recipient_id):
        return None
    return f"{recipient_id!r} is not a valid {platform} recipient: expected {form[1]}"
