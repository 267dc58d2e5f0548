"""What an OTP message says: a short text per locale, or the caller's template with ``{{code}}``.

Texts stay short and put the code last but one, so it survives SMS previews and is spoken clearly (the Twilio
voice channel reads runs of 4 to 10 digits one digit at a time). Subjects never carry the code: mail clients
show them in notifications and lists.
"""

from __future__ import annotations

from datetime import datetime

from herald.errors import ValidationFailed
from herald.messaging import templates

# language -> (text, email subject)
_TEXTS: dict[str, tuple[str, str]] = {
    "en": ("Your verification code is {{code}}. Do not share it.", "Your verification code"),
    "es": ("Tu código de verificación es {{code}}. No lo compartas.", "Tu código de verificación"),
    "fr": ("Votre code de vérification est {{code}}. Ne le partagez pas.", "Votre code de vérification"),
    "de": ("Ihr Bestätigungscode lautet {{code}}. Geben Sie ihn nicht weiter.", "Ihr Bestätigungscode"),
    "it": ("Il tuo codice di verifica è {{code}}. Non condividerlo.", "Il tuo codice di verifica"),
    "pt": ("Seu código de verificação é {{code}}. Não o compartilhe.", "Seu código de verificação"),
    "nl": ("Uw verificatiecode is {{code}}. Deel deze niet.", "Uw verificatiecode"),
}
LOCALES = frozenset(_TEXTS)


def _language(locale: str | None) -> str:
    language = (locale or "en").replace("_", "-").split("-", 1)[0].lower()
    return language if language in _TEXTS else "en"


def subject(locale: str | None) -> str:
    return _TEXTS[_language(locale)][1]


def source(template: str | None, locale: str | None) -> str:
    """The template a message is rendered from: the caller's, else the locale's (English when unknown)."""
    return template if template is not None else _TEXTS[_language(locale)][0]


def variables(code: str, ttl_seconds: int) -> dict[str, str | int]:
    return {"code": code, "minutes": max(1, ttl_seconds // 60)}


def render(template: str, code: str, ttl_seconds: int, now: datetime, *, field: str = "template") -> str:
    return templates.render(template, variables(code, ttl_seconds), now=now, timezone="UTC", field=field)


def check_template(template: str, now: datetime, *, field: str = "template") -> None:
    """Refuse a template that does not render, or that would not show the code (a 422 naming ``field``)."""
    one = render(template, "0000", 600, now, field=field)
    other = render(template, "1111", 600, now, field=field)
    if one == other:
        raise ValidationFailed("the template must show the code: put {{code}} in it", field=field)
