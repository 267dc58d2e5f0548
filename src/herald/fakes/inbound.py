"""Inbound webhook requests as each provider sends them, correctly signed, for tests and benchmarks.

Each builder returns a :class:`FakeInbound` ``(method, headers, body)`` in the provider's real payload shape, signed
with the channel's inbound secret from ``credentials`` (or with ``secret=`` to forge a wrong signature); send it
to any path, or turn it into a :class:`~herald.providers.receipts.CallbackRequest` with :meth:`FakeInbound.callback`.
:func:`signed` signs any other payload (handshakes, statuses, edits). The signatures are computed here
independently of :mod:`herald.providers.inbound`, so a test using them checks the verifier rather than
mirroring it. Framework-free on purpose: no HTTP server is involved.

Discord signs with a private key the channel never holds: credentials carry ``public_key``; builders sign with
``secret=`` (a hex Ed25519 seed) or else :data:`DISCORD_TEST_PRIVATE_KEY`, whose public half is
:data:`DISCORD_TEST_PUBLIC_KEY`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from herald.providers.receipts import CallbackRequest

DEFAULT_URL = "https://herald.example/api/v1/interfaces/chn_test/webhook"
FORM = "application/x-www-form-urlencoded"
SECRET_KEYS = {
    "whatsapp_cloud": "app_secret",
    "messenger": "app_secret",
    "slack": "signing_secret",
    "telegram": "secret_token",
    "twilio": "auth_token",
    "line": "channel_secret",
    "discord_bot": "public_key",
}


class FakeInbound(NamedTuple):
    method: str
    headers: dict[str, str]
    body: bytes

    def callback(self, url: str = DEFAULT_URL) -> CallbackRequest:
        """The request as a provider parser sees it (Twilio: ``url`` must be the one that was signed)."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        form = {}
        if headers.get("content-type", "").startswith(FORM):
            form = dict(parse_qsl(self.body.decode(), keep_blank_values=True))
        return CallbackRequest(url=url, body=self.body, headers=headers, form=form)


def discord_key_pair() -> tuple[str, str]:
    """A fresh (private seed hex, public key hex) pair, e.g. for a wrong-key test."""
    seed = secrets.token_bytes(32)
    return seed.hex(), _discord_public(seed.hex())


def _discord_public(private_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


DISCORD_TEST_PRIVATE_KEY = hashlib.sha256(b"herald discord test key").hexdigest()
DISCORD_TEST_PUBLIC_KEY = _discord_public(DISCORD_TEST_PRIVATE_KEY)


def _hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def _encode(provider: str, payload: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if provider == "twilio":
        return urlencode({k: str(v) for k, v in payload.items()}).encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def signed(
    provider: str,
    credentials: Mapping[str, Any],
    payload: Mapping[str, Any] | bytes,
    *,
    secret: str | None = None,
    signed_at: int | None = None,
    url: str = DEFAULT_URL,
) -> FakeInbound:
    """``payload`` (JSON; Twilio: form fields) as ``provider`` sends it, with its signature headers.

    ``secret`` replaces the channel's secret (Discord: the private seed that signs); ``signed_at`` the signing
    time (Slack, Discord); ``url`` is the URL Twilio signs.
    """
    body = _encode(provider, payload)
    if provider == "discord_bot":
        key = secret or DISCORD_TEST_PRIVATE_KEY
    else:
        key = secret if secret is not None else str(credentials.get(SECRET_KEYS[provider]) or "")
        if not key:
            raise ValueError(f"no {SECRET_KEYS[provider]} in credentials and no secret= to sign with")
    stamp = str(int(time.time()) if signed_at is None else signed_at)
    json_type = {"content-type": "application/json"}
    if provider in ("whatsapp_cloud", "messenger"):
        headers = {**json_type, "x-hub-signature-256": "sha256=" + _hmac_hex(key, body)}
    elif provider == "slack":
        signature = "v0=" + _hmac_hex(key, f"v0:{stamp}:".encode() + body)
        headers = {**json_type, "x-slack-request-timestamp": stamp, "x-slack-signature": signature}
    elif provider == "telegram":
        headers = {**json_type, "x-telegram-bot-api-secret-token": key}
    elif provider == "line":
        digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
        headers = {**json_type, "x-line-signature": base64.b64encode(digest).decode()}
    elif provider == "twilio":
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        data = url + "".join(name + params[name] for name in sorted(params))
        digest = hmac.new(key.encode(), data.encode(), hashlib.sha1).digest()
        headers = {"content-type": FORM, "x-twilio-signature": base64.b64encode(digest).decode()}
    elif provider == "discord_bot":
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key))
        signature = private.sign(stamp.encode() + body).hex()
        headers = {**json_type, "x-signature-ed25519": signature, "x-signature-timestamp": stamp}
    else:
        raise ValueError(f"no inbound fake for {provider!r}")
    return FakeInbound("POST", headers, body)


def _now(sent_at: datetime | None) -> datetime:
    return sent_at or datetime.now(UTC)


def _digits(count: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


def whatsapp_cloud(
    credentials: Mapping[str, Any],
    *,
    text: str = "Hello",
    sender_id: str = "16505551234",
    sender_name: str | None = "Ada Lovelace",
    message_id: str | None = None,
    sent_at: datetime | None = None,
    context_id: str | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """A text message in ``entry[].changes[].value.messages[]``; the conversation is the sender's wa_id.
    ``context_id`` makes it a quoted reply to that message (``context: {from, id}``)."""
    message: dict[str, Any] = {
        "from": sender_id,
        "id": message_id or _wamid(),
        "timestamp": str(int(_now(sent_at).timestamp())),
        "type": "text",
        "text": {"body": text},
    }
    if context_id:
        message["context"] = {"from": "15550783881", "id": context_id}
    phone_number_id = str(credentials.get("phone_number_id") or "106540352242922")
    return _whatsapp_signed(credentials, phone_number_id, message, sender_id, sender_name, secret)


def _wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()


def _whatsapp_signed(
    credentials: Mapping[str, Any],
    phone_number_id: str,
    message: dict[str, Any],
    sender_id: str,
    sender_name: str | None,
    secret: str | None,
) -> FakeInbound:
    """One message in a ``whatsapp_business_account`` webhook, with the sender's contact when named."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": sender_name}, "wa_id": sender_id}] if sender_name else [],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return signed("whatsapp_cloud", credentials, payload, secret=secret)


def messenger(
    credentials: Mapping[str, Any],
    *,
    text: str = "Hello",
    sender_id: str = "6543210987654321",
    message_id: str | None = None,
    sent_at: datetime | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """A text message in ``entry[].messaging[]``; the conversation is the sender's PSID."""
    page_id = str(credentials.get("page_id") or "1234567890")
    millis = int(_now(sent_at).timestamp() * 1000)
    event = {
        "sender": {"id": sender_id},
        "recipient": {"id": page_id},
        "timestamp": millis,
        "message": {"mid": message_id or "m_" + secrets.token_urlsafe(32), "text": text},
    }
    payload = {"object": "page", "entry": [{"id": page_id, "time": millis, "messaging": [event]}]}
    return signed("messenger", credentials, payload, secret=secret)


def slack(
    credentials: Mapping[str, Any],
    *,
    text: str = "Hello",
    sender_id: str = "U061F7AUR",
    conversation_key: str = "C0LAN2Q65",
    message_id: str | None = None,
    thread_id: str | None = None,
    sent_at: datetime | None = None,
    signed_at: int | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """An ``event_callback`` with a ``message`` event; ``message_id`` is the message's ``ts`` (by default
    ``sent_at`` as Slack writes it), ``thread_id`` its ``thread_ts``."""
    ts = message_id or f"{_now(sent_at).timestamp():.6f}"
    event: dict[str, Any] = {
        "type": "message",
        "channel": conversation_key,
        "user": sender_id,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im" if conversation_key.startswith("D") else "channel",
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_id:
        event["thread_ts"] = thread_id
    payload = {
        "token": "XXYYZZ",
        "team_id": "T061EG9R6",
        "api_app_id": "A0MDYCDME",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(float(ts)),
        "authorizations": [{"team_id": "T061EG9R6", "user_id": "U0LAN0Z89", "is_bot": True}],
    }
    return signed("slack", credentials, payload, secret=secret, signed_at=signed_at)


def telegram(
    credentials: Mapping[str, Any],
    *,
    text: str = "Hello",
    sender_id: str = "111111111",
    sender_name: str = "Ada Lovelace",
    conversation_key: str | None = None,
    message_id: int | None = None,
    sent_at: datetime | None = None,
    reply_to_message_id: int | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """An update with a ``message``: a private chat with the sender, or the group ``conversation_key``.
    ``reply_to_message_id`` makes it a reply to that message (a bot's, with ``reply_to_message``)."""
    person = _telegram_person(sender_id, sender_name)
    chat = _telegram_chat(person, sender_id, conversation_key)
    message: dict[str, Any] = {
        "message_id": message_id if message_id is not None else secrets.randbelow(2**31),
        "from": person,
        "chat": chat,
        "date": int(_now(sent_at).timestamp()),
        "text": text,
    }
    if reply_to_message_id is not None:
        message["reply_to_message"] = {
            "message_id": reply_to_message_id,
            "from": _TELEGRAM_BOT,
            "chat": chat,
            "date": int(_now(sent_at).timestamp()) - 60,
            "text": "Herald asked something",
        }
    payload = {"update_id": secrets.randbelow(2**31), "message": message}
    return signed("telegram", credentials, payload, secret=secret)


_TELEGRAM_BOT = {"id": 123456, "is_bot": True, "first_name": "Herald", "username": "herald_bot"}


def _telegram_person(sender_id: str, sender_name: str) -> dict[str, Any]:
    first, _, last = sender_name.partition(" ")
    person: dict[str, Any] = {
        "id": int(sender_id),
        "is_bot": False,
        "first_name": first,
        "language_code": "en",
    }
    if last:
        person["last_name"] = last
    return person


def _telegram_chat(person: Mapping[str, Any], sender_id: str, conversation_key: str | None) -> dict[str, Any]:
    """The private chat with ``person``, or the supergroup ``conversation_key``."""
    if conversation_key is None or conversation_key == sender_id:
        chat: dict[str, Any] = {**person, "type": "private"}
        del chat["is_bot"], chat["language_code"]
        return chat
    return {"id": int(conversation_key), "title": "Herald group", "type": "supergroup"}


def twilio(
    credentials: Mapping[str, Any],
    *,
    url: str = DEFAULT_URL,
    text: str = "Hello",
    sender_id: str = "+14155551212",
    sender_name: str | None = None,
    message_id: str | None = None,
    media: Sequence[tuple[str, str]] = (),
    secret: str | None = None,
) -> FakeInbound:
    """An incoming SMS (or WhatsApp message when ``sender_id`` is ``whatsapp:+...``) as form fields, signed for
    ``url``. ``media`` is (URL, content type) pairs. Twilio sends no timestamp."""
    sid = message_id or "SM" + secrets.token_hex(16)
    to = str(credentials.get("from_number") or "+15017122661")
    whatsapp = sender_id.startswith("whatsapp:")
    params = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": str(len(media)), "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received", "FromCity": "", "Body": text,
        "FromCountry": "US", "To": f"whatsapp:{to}" if whatsapp else to, "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": str(credentials.get("account_sid") or "AC" + "0" * 32),
        "From": sender_id, "ApiVersion": "2010-04-01",
    }  # fmt: skip
    for i, (media_url, content_type) in enumerate(media):
        params[f"MediaUrl{i}"] = media_url
        params[f"MediaContentType{i}"] = content_type
    if whatsapp:
        params["WaId"] = sender_id.removeprefix("whatsapp:+")
        params["MessageType"] = media[0][1].split("/")[0] if media else "text"
        if sender_name:
            params["ProfileName"] = sender_name
    return signed("twilio", credentials, params, secret=secret, url=url)


def line(
    credentials: Mapping[str, Any],
    *,
    text: str = "Hello",
    sender_id: str = "U4af4980629a1b2c3d4e5f60718293a4b",
    conversation_key: str | None = None,
    message_id: str | None = None,
    reply_token: str | None = None,
    sent_at: datetime | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """A ``message`` event from a user, or from the group (``C...``) or room (``R...``) ``conversation_key``."""
    source: dict[str, Any] = {"type": "user", "userId": sender_id}
    if conversation_key and conversation_key != sender_id:
        kind = "room" if conversation_key.startswith("R") else "group"
        source = {"type": kind, f"{kind}Id": conversation_key, "userId": sender_id}
    event = {
        "type": "message",
        "message": {
            "type": "text",
            "id": message_id or _digits(18),
            "quoteToken": secrets.token_urlsafe(48),
            "text": text,
        },
        "webhookEventId": "01" + secrets.token_hex(12).upper(),
        "deliveryContext": {"isRedelivery": False},
        "timestamp": int(_now(sent_at).timestamp() * 1000),
        "source": source,
        "replyToken": reply_token or secrets.token_hex(16),
        "mode": "active",
    }
    payload = {"destination": "U" + secrets.token_hex(16), "events": [event]}
    return signed("line", credentials, payload, secret=secret)


def discord_bot(
    credentials: Mapping[str, Any],
    *,
    text: str = "Hello",
    command: str = "ask",
    option: str = "text",
    sender_id: str = "53908232506183680",
    sender_name: str = "Ada",
    conversation_key: str = "645027906669510667",
    message_id: str | None = None,
    sent_at: datetime | None = None,
    guild_id: str | None = "290926798626357999",
    token: str | None = None,
    signed_at: int | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """An APPLICATION_COMMAND ``/{command} {option}:{text}`` in a server channel (``guild_id=None``: a DM).
    ``message_id`` is the interaction's snowflake id, by default made from ``sent_at``."""
    millis = int(_now(sent_at).timestamp() * 1000)
    snowflake = message_id or str(((millis - 1_420_070_400_000) << 22) | secrets.randbelow(1 << 22))
    user = {
        "id": sender_id,
        "username": sender_name.lower(),
        "global_name": sender_name,
        "discriminator": "0",
        "avatar": None,
    }
    interaction: dict[str, Any] = {
        "type": 2,
        "id": snowflake,
        "application_id": "775799577604522054",
        "token": token or secrets.token_urlsafe(64),
        "version": 1,
        "channel_id": conversation_key,
        "data": {
            "id": "771825006014889984",
            "name": command,
            "type": 1,
            "options": [{"type": 3, "name": option, "value": text}],
        },
        "locale": "en-US",
    }
    if guild_id:
        interaction["guild_id"] = guild_id
        interaction["member"] = {"user": user, "roles": [], "nick": None, "permissions": "2147483647"}
    else:
        interaction["user"] = user
    return signed("discord_bot", credentials, interaction, secret=secret, signed_at=signed_at)


BUILDERS: dict[str, Callable[..., FakeInbound]] = {
    "whatsapp_cloud": whatsapp_cloud,
    "messenger": messenger,
    "slack": slack,
    "telegram": telegram,
    "twilio": twilio,
    "line": line,
    "discord_bot": discord_bot,
}


def message(provider: str, credentials: Mapping[str, Any], **fields: Any) -> FakeInbound:
    """A signed text message for ``provider``; ``fields`` are that provider builder's keyword arguments."""
    return BUILDERS[provider](credentials, **fields)


# -- button presses (Slack, Discord) --


def slack_block_action(
    credentials: Mapping[str, Any],
    *,
    value: str,
    label: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_ts: str | None = None,
    user_name: str | None = None,
    style: str | None = None,
    thread_ts: str | None = None,
    signed_at: int | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """A ``block_actions`` interaction: ``user_id`` pressed the button ``value``/``label`` on the bot's message
    ``message_ts`` in ``channel_id`` (``thread_ts``: a message in a thread). Slack posts it form-encoded, the JSON
    in the ``payload`` field, signed over the raw form body like Events API requests."""
    stamp = action_ts or f"{time.time():.6f}"
    name = user_name or "ada"
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": True},
                              "value": value, "action_id": value}  # fmt: skip
    if style:
        button["style"] = style
    block_id = secrets.token_urlsafe(4)
    message: dict[str, Any] = {
        "type": "message", "subtype": "bot_message", "text": "Approve?", "ts": message_ts, "bot_id": "B0LAN0Z89",
        "app_id": "A0MDYCDME", "user": "U0LAN0Z89", "team": "T061EG9R6",
        "blocks": [{"type": "actions", "block_id": block_id, "elements": [button]}],
    }  # fmt: skip
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": "T061EG9R6"},
        "api_app_id": "A0MDYCDME",
        "token": "XXYYZZ",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": f"{_digits(13)}.{_digits(12)}.{secrets.token_hex(16)}",
        "team": {"id": "T061EG9R6", "domain": "herald-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "directmessage" if channel_id.startswith("D") else "general"},
        "message": message,
        "state": {"values": {}},
        "response_url": f"https://hooks.slack.com/actions/T061EG9R6/{_digits(13)}/{secrets.token_urlsafe(18)}",
        "actions": [{**button, "block_id": block_id, "action_ts": stamp}],
    }
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    request = signed("slack", credentials, body, secret=secret, signed_at=signed_at)
    return request._replace(headers={**request.headers, "content-type": FORM})


def discord_component(
    credentials: Mapping[str, Any],
    *,
    custom_id: str,
    user_id: str,
    channel_id: str,
    message_id: str,
    label: str | None = None,
    user_name: str = "Ada",
    interaction_id: str | None = None,
    sent_at: datetime | None = None,
    guild_id: str | None = "290926798626357999",
    token: str | None = None,
    signed_at: int | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """A MESSAGE_COMPONENT interaction: ``user_id`` pressed the button ``custom_id`` on the bot's message
    ``message_id`` in ``channel_id`` (``guild_id=None``: a DM). With ``label`` the message carries that button
    in its components; ``interaction_id`` is the interaction's snowflake, by default made from ``sent_at``.
    Signed like :func:`discord_bot` (``secret``: the private seed, else the test key)."""
    millis = int(_now(sent_at).timestamp() * 1000)
    snowflake = interaction_id or str(((millis - 1_420_070_400_000) << 22) | secrets.randbelow(1 << 22))
    user = {"id": user_id, "username": user_name.lower(), "global_name": user_name, "discriminator": "0",
            "avatar": None}  # fmt: skip
    rows: list[dict[str, Any]] = []
    if label is not None:
        button = {"type": 2, "style": 2, "label": label, "custom_id": custom_id}
        rows = [{"type": 1, "id": 1, "components": [{**button, "id": 2}]}]
    message = {
        "id": message_id, "type": 0, "channel_id": channel_id, "content": "Approve?", "components": rows,
        "author": {"id": "1000000000000000001", "username": "Herald", "bot": True}, "attachments": [],
        "embeds": [], "mentions": [], "pinned": False, "tts": False, "flags": 0, "edited_timestamp": None,
        "timestamp": datetime.fromtimestamp(millis / 1000, UTC).isoformat(),
    }  # fmt: skip
    interaction: dict[str, Any] = {
        "type": 3,
        "id": snowflake,
        "application_id": "775799577604522054",
        "token": token or secrets.token_urlsafe(64),
        "version": 1,
        "channel_id": channel_id,
        "message": message,
        "data": {"custom_id": custom_id, "component_type": 2},
        "locale": "en-US",
    }
    if guild_id:
        interaction["guild_id"] = guild_id
        interaction["member"] = {"user": user, "roles": [], "nick": None, "permissions": "2147483647"}
    else:
        interaction["user"] = user
    return signed("discord_bot", credentials, interaction, secret=secret, signed_at=signed_at)


# -- button presses (Telegram, WhatsApp) --


def telegram_callback_query(
    credentials: Mapping[str, Any],
    *,
    data: str,
    sender_id: str,
    chat_id: str,
    message_id: int,
    button_text: str | None = None,
    callback_id: str | None = None,
    sender_name: str | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """An update with a ``callback_query``: ``sender_id`` pressed the inline keyboard button whose
    ``callback_data`` is ``data`` on the bot's message ``message_id`` in chat ``chat_id`` (a private chat when it
    is the sender's id, else a supergroup). The message's keyboard carries that button (text ``button_text``,
    by default ``data``) and another; ``callback_id`` is the query id (the press's reply token)."""
    person = _telegram_person(sender_id, sender_name or "Ada")
    chat = _telegram_chat(person, sender_id, chat_id)
    row = [{"text": button_text or data, "callback_data": data}]
    if data != "other":
        row.append({"text": "Other", "callback_data": "other"})
    message = {
        "message_id": message_id,
        "from": _TELEGRAM_BOT,
        "chat": chat,
        "date": int(time.time()) - 60,
        "text": "Herald asks: approve?",
        "reply_markup": {"inline_keyboard": [row]},
    }
    query = {
        "id": callback_id or _digits(19),
        "from": person,
        "message": message,
        "chat_instance": "-" + _digits(19),
        "data": data,
    }
    payload = {"update_id": secrets.randbelow(2**31), "callback_query": query}
    return signed("telegram", credentials, payload, secret=secret)


def whatsapp_button_reply(
    credentials: Mapping[str, Any],
    *,
    button_id: str,
    title: str,
    sender: str,
    context_id: str,
    message_id: str | None = None,
    phone_number_id: str | None = None,
    sender_name: str | None = "Ada Lovelace",
    list_reply: bool = False,
    sent_at: datetime | None = None,
    secret: str | None = None,
) -> FakeInbound:
    """A tap by ``sender`` on the reply button ``button_id`` (titled ``title``) of the business's message
    ``context_id``: an ``interactive`` ``button_reply`` message, or with ``list_reply=True`` a ``list_reply``
    (a row chosen from a list message). ``phone_number_id`` defaults to the credentials' one."""
    kind = "list_reply" if list_reply else "button_reply"
    message = {
        "context": {"from": "15550783881", "id": context_id},
        "from": sender,
        "id": message_id or _wamid(),
        "timestamp": str(int(_now(sent_at).timestamp())),
        "type": "interactive",
        "interactive": {"type": kind, kind: {"id": button_id, "title": title}},
    }
    number = phone_number_id or str(credentials.get("phone_number_id") or "106540352242922")
    return _whatsapp_signed(credentials, number, message, sender, sender_name, secret)
