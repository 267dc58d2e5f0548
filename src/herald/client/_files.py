"""Seed 003's message files, read into Herald send requests.

A file is a JSON list of messages (or an object with a ``messages`` list). Each message is seed 003's
``{"phone_number", "message_type", "content", "priority", "scheduled_for"}`` or Herald's own send request; the
two may mix. Seed 003 fields are mapped: ``phone_number`` becomes ``recipient_id``; ``message_type`` names the
platform when it is one (``sms``, ``whatsapp``, ``voice`` or ``call``, ``email``...), otherwise (``otp``,
``alert``, ``notification``, ``reminder``) the default platform is used, and it is kept in
``governance_metadata.message_type``. Anything else passes through untouched, so Herald judges every item
and names the field of any that is wrong instead of the file being refused as a whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from herald.client._errors import HeraldError

PLATFORMS = frozenset({
    "slack", "discord", "teams", "whatsapp", "telegram", "google_chat", "signal", "messenger", "line", "sms",
    "voice", "email", "webhook",
})  # fmt: skip
_ALIASES = {"call": "voice", "phone": "voice", "text": "sms", "mail": "email"}


class MessageFileError(HeraldError, ValueError):
    """The file cannot be read as a list of messages (not JSON, or not a list)."""


def platform_named(message_type: Any) -> str | None:
    """The platform a seed 003 ``message_type`` names, if it names one."""
    if isinstance(message_type, str):
        name = message_type.strip().lower()
        name = _ALIASES.get(name, name)
        if name in PLATFORMS:
            return name
    return None


def to_send_request(item: Any, *, agent_id: str | None = None, platform: str = "sms") -> Any:
    """One message in seed 003's or Herald's form as a Herald send request (anything not a dict is kept as is)."""
    if not isinstance(item, Mapping):
        return item
    out = dict(item)
    phone = out.pop("phone_number", None)
    message_type = out.pop("message_type", None)
    if phone is not None and "recipient_id" not in out:
        out["recipient_id"] = phone
    if "platform" not in out:
        named = platform_named(message_type)
        if named is not None:
            out["platform"] = named
        elif "contact_id" not in out:  # a contact is routed by priority instead
            out["platform"] = platform
    if message_type is not None:
        metadata = out.get("governance_metadata")
        if metadata is None or isinstance(metadata, Mapping):
            out["governance_metadata"] = {"message_type": message_type, **(metadata or {})}
    if agent_id is not None and "agent_id" not in out:
        out["agent_id"] = agent_id
    return out


def read_messages_file(
    path: str | Path, *, agent_id: str | None = None, platform: str = "sms", idempotent: bool = False
) -> list[Any]:
    """The file's messages as send requests. With ``idempotent`` each gets a key derived from the file's bytes and
    its position (unless it has one), so sending the same file again replays instead of sending twice."""
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise MessageFileError(f"{path}: not JSON ({exc})") from exc
    if isinstance(data, Mapping) and isinstance(data.get("messages"), list):
        data = data["messages"]
    if not isinstance(data, list):
        raise MessageFileError(f"{path}: expected a list of messages (or an object with a 'messages' list)")
    items = [to_send_request(item, agent_id=agent_id, platform=platform) for item in data]
    if idempotent:
        digest = hashlib.sha256(raw).hexdigest()[:24]
        for index, item in enumerate(items):
            if isinstance(item, dict):
                item.setdefault("idempotency_key", f"file-{digest}-{index}")
    return items


def chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(offset, slice) pairs of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def materialise(messages: Iterable[Any]) -> list[Any]:
    return messages if isinstance(messages, list) else list(messages)
