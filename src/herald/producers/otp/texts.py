"""What an OTP message says: a short text per locale, or the caller's template with ``{{code}}``.

A caller's template is plain text with two placeholders, ``{{code}}`` and ``{{minutes}}``, filled in by
substitution; any other template syntax is refused. A real template language would let a caller branch on the
code and read it back through which error comes out (an oracle), so none is offered here.

Texts stay short and put the code last but one, so it survives SMS previews and is spoken clearly (the Twilio
voice channel reads runs of 4 to 10 digits one digit at a time). Subjects never carry the code: mail clients
show them in notifications and lists.
"""

from __future__ import annotations

import re
from datetime import datetime

from herald.core.errors import ValidationFailed

_PLACEHOLDER = re.compile(r"\{\{\s*(code|minutes)\s*\}\}")
_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")

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


def render(
    template: str, code: str, ttl_seconds: int, now: datetime | None = None, *, field: str = "template"
) -> str:
    """Fill in the placeholders (``now`` and ``field`` are kept for callers; substitution cannot fail)."""
    values = variables(code, ttl_seconds)
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def check_template(template: str, now: datetime | None = None, *, field: str = "template") -> None:
    """Refuse template syntax other than the two placeholders, and a template without the code (422)."""
    if _SYNTAX.search(_PLACEHOLDER.sub("", template)):
        raise ValidationFailed(
            "an OTP template is plain text with {{code}} and optionally {{minutes}}; nothing else may be filled in",
            field=field,
        )
    if not any(match.group(1) == "code" for match in _PLACEHOLDER.finditer(template)):
        raise ValidationFailed("the template must show the code: put {{code}} in it", field=field)
