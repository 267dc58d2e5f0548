"""A message's content fingerprint: what "the same text, modulo numbers and dates" means, as one number.

Repeated manual sends (:mod:`herald.learning.patterns`) group a month of messages by their text with every
digit removed. Stripping and comparing the text of a million rows at every detection costs seconds (most of it
in ``translate()``); the fingerprint is computed once, when the message is written, so the detector groups on a
``BIGINT`` instead. It is the first 8 bytes of the MD5 of the UTF-8 text without ASCII digits, read as a signed
big-endian integer; :data:`PG_SQL` computes the same number in PostgreSQL (migration ``0027`` fills existing rows
with it). A collision only makes two texts candidates together: the detector compares the texts themselves.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

_NO_DIGITS: Final = str.maketrans("", "", "0123456789")

PG_SQL: Final = "('x' || substr(md5(translate({column}, '0123456789', '')), 1, 16))::bit(64)::bigint"
"""The same fingerprint in PostgreSQL, for ``{column}`` (a text expression)."""


def content_fingerprint(content: str | None) -> int | None:
    """The fingerprint of ``content`` (None for None)."""
    if content is None:
        return None
    stripped = content.translate(_NO_DIGITS).encode("utf-8", "surrogatepass")
    digest = hashlib.md5(stripped, usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def fingerprint_default(context: Any) -> int | None:
    """Column default: the fingerprint of the ``content`` being inserted, so every INSERT through SQLAlchemy
    (the ORM, ``insert()`` with one row or many) carries it without each caller remembering to."""
    if context is None:  # a caller computing defaults without a statement (bulk COPY) passes the value itself
        return None
    return content_fingerprint(context.get_current_parameters().get("content"))
