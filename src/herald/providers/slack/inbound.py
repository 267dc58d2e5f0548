"""Slack inbound: Events API messages and interactivity button presses.

Every request is signed: ``X-Slack-Signature: v0=<hex HMAC-SHA256(signing_secret, "v0:{timestamp}:{raw body}")>``
with ``X-Slack-Request-Timestamp``; timestamps more than 5 minutes from now are refused so a captured request
cannot be replayed. The ``url_verification`` handshake is signed too and is answered with its ``challenge`` only
after the signature checks. Messages are ``event_callback`` payloads whose ``event`` is a ``message`` (or an
``app_mention``, which has the same ``channel:ts`` id, so both deduplicate to one message). Bot messages
(``bot_id``, which includes Herald's own) and subtypes other than a file share (edits, deletions, joins) are skipped.
A threaded reply (``thread_ts`` other than its own ``ts``) answers its thread's parent: ``in_reply_to`` is the
parent's bare ``ts``, the id Herald keeps for the messages it posts.

Button presses come from Slack's interactivity endpoint, pointed at the same URL: a form body whose ``payload``
field is JSON, signed the same way (over the raw form body). A ``block_actions`` payload becomes one message per
pressed button: ``action`` is the button's ``value``, the text its label, ``in_reply_to`` the ``ts`` of the
message carrying the button, and the id ``{channel}:{action_ts}``, unique per press. Other interaction types
(shortcuts, modals) are not messages.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from herald.core.errors import Unauthorized
from herald.core.security import fresh_timestamp
from herald.providers.inbound.base import (
    Credentials,
    InboundAdapter,
    InboundMessage,
    Reply,
    attachment,
    dicts,
    from_epoch,
    header,
    kind_of,
    loads,
    maybe_json,
    obj,
    same,
    secret,
)
from herald.providers.receipts import CallbackRequest

PROVIDER = "slack"
MESSAGE_EVENTS = frozenset({"message", "app_mention"})
PERSON_SUBTYPES = frozenset(
    {"file_share", "thread_broadcast"}
)  # subtypes that are still a person's new message


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def verify(credentials: Credentials, request: CallbackRequest) -> None:
    key = secret(credentials, "signing_secret")
    stamp = header(request, "X-Slack-Request-Timestamp")
    given = header(request, "X-Slack-Signature")
    fresh_timestamp(stamp, "X-Slack-Request-Timestamp")
    if not same(signature(key, stamp, request.body), given):
        raise Unauthorized("X-Slack-Signature does not match")


def handshake(credentials: Credentials, request: CallbackRequest) -> Reply | None:
    payload = maybe_json(request.body)
    if not isinstance(payload, dict) or payload.get("type") != "url_verification":
        return None
    verify(credentials, request)
    return Reply(200, str(payload.get("challenge") or ""))


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    if "payload" in request.form:  # an interactivity request: a form with the JSON payload
        return _interaction(obj(loads(request.form["payload"].encode())))
    payload = obj(loads(request.body))
    event = obj(payload.get("event"))
    if payload.get("type") != "event_callback" or event.get("type") not in MESSAGE_EVENTS:
        return []
    if event.get("bot_id") or event.get("hidden") or event.get("subtype", "") not in PERSON_SUBTYPES | {""}:
        return []
    user, channel, ts = (str(event.get(key) or "") for key in ("user", "channel", "ts"))
    text = str(event.get("text") or "")
    attachments = tuple(
        attachment(kind_of(f.get("mimetype")), str(f["id"]), f.get("mimetype"), f.get("name"))
        for f in dicts(event.get("files"))
        if f.get("id")
    )
    if not (user and channel and ts) or not (text or attachments):
        return []
    profile = obj(event.get("user_profile"))
    thread = event.get("thread_ts")
    return [
        InboundMessage(
            conversation_key=channel,
            sender_id=user,
            sender_name=str(profile.get("display_name") or profile.get("real_name") or "") or None,
            text=text,
            attachments=attachments,
            provider_message_id=f"{channel}:{ts}",
            sent_at=from_epoch(ts),
            thread_id=str(thread) if thread else None,
            raw_type="text" if text else attachments[0]["kind"],
            in_reply_to=str(thread) if thread and thread != ts else None,
        )
    ]


def _interaction(payload: dict[str, Any]) -> list[InboundMessage]:
    """A ``block_actions`` payload: one message per pressed button (other elements and types are skipped)."""
    if payload.get("type") != "block_actions":
        return []
    user, container, message = (obj(payload.get(key)) for key in ("user", "container", "message"))
    channel = str(obj(payload.get("channel")).get("id") or container.get("channel_id") or "")
    pressed_on = str(container.get("message_ts") or message.get("ts") or "")
    thread = message.get("thread_ts")
    if not (user.get("id") and channel):
        return []
    found = []
    for action in dicts(payload.get("actions")):
        value, stamp = action.get("value"), str(action.get("action_ts") or "")
        if action.get("type") != "button" or not isinstance(value, str) or not value or not stamp:
            continue
        found.append(
            InboundMessage(
                conversation_key=channel,
                sender_id=str(user["id"]),
                sender_name=str(user.get("name") or user.get("username") or "") or None,
                text=str(obj(action.get("text")).get("text") or value),
                provider_message_id=f"{channel}:{stamp}",
                sent_at=from_epoch(stamp),
                thread_id=str(thread) if thread else None,
                raw_type="action",
                action=value,
                in_reply_to=pressed_on or None,
            )
        )
    return found


ADAPTER = InboundAdapter(PROVIDER, "signing_secret", verify, handshake, parse)
