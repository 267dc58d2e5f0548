"""Email attachments: what a message carries besides its text, and the checks every attachment passes.

An attachment arrives base64 in a send request, travels decoded as :class:`Attachment` (bytes) from the route to
the provider, and is stored only inside the message's sealed payload (``messages.sealed_content``), which every
path that finishes a message already drops. What stays readable is :func:`describe`'s metadata: filename,
content type and size, so answers never carry the content.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# type/subtype as RFC 2045 tokens (no parameters: the type is a label here, not a header to pass through).
_MIME_NAME = r"[A-Za-z0-9!#$&^_.+\-]{1,127}"
CONTENT_TYPE = re.compile(rf"^{_MIME_NAME}/{_MIME_NAME}$")
MAX_FILENAME = 255
# Platforms whose messages may carry attachments.
PLATFORMS = frozenset({"email"})


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file sent with a message."""

    filename: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.content).decode("ascii")


def filename_problem(name: str) -> str | None:
    """Why ``name`` is not a safe file name (path separators, control characters, dot names), or None."""
    if not name or len(name) > MAX_FILENAME:
        return f"must be 1 to {MAX_FILENAME} characters"
    if "/" in name or "\\" in name:
        return "must be a file name without path separators"
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return "must not contain control characters"
    if name.strip(". ") == "":
        return "must name a file, not '.' or '..'"
    return None


def content_type_problem(value: str) -> str | None:
    return None if CONTENT_TYPE.match(value) else "must be a media type of the form type/subtype"


def decode(value: str) -> bytes:
    """Canonical base64 (standard alphabet, padded, no line breaks): what encoders write, so a value that decodes
    only by a lenient reading (stray padding, spaces) is refused rather than guessed at. ValueError otherwise."""
    try:
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be valid base64") from exc
    if binascii.b2a_base64(decoded, newline=False).decode("ascii") != value:
        raise ValueError("must be valid base64 (canonical: standard alphabet, padded, no line breaks)")
    return decoded


def describe(attachments: Iterable[Attachment]) -> list[dict[str, Any]]:
    """What answers show of attachments: never the content."""
    return [{"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in attachments]


def to_sealed(attachments: Sequence[Attachment]) -> list[dict[str, str]]:
    """JSON for the sealed payload."""
    return [
        {"filename": a.filename, "content_type": a.content_type, "content": a.base64} for a in attachments
    ]


def from_sealed(items: Iterable[Mapping[str, Any]]) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(str(i["filename"]), str(i["content_type"]), decode(str(i["content"]))) for i in items
    )
