"""Seed 003's ``otp_messaging_agent`` over Herald: the same classes, calls and answers, sent through a server.

Code written for seed 003 runs with only its import changed::

    from herald.compat.otp import IntelligentOTPAgent, MessageRequest, Priority

    agent = IntelligentOTPAgent()          # HERALD_URL and HERALD_API_KEY, or base_url= and api_key=
    agent.start_processing()
    message_id = agent.send_otp("+447700900123", user_id="user123")
    success, message = agent.verify_otp("+447700900123", "123456")
    report = agent.get_delivery_report(message_id)      # .status .channel .attempts
    metrics = agent.get_metrics()                       # ['database_stats']['success_rate'], ['queue_size']

What the seed did in-process (queue, retries, fallback, rate limits, its SQLite file) Herald does on the server:
``start_processing`` checks that the server and a worker answer and registers the sending agent. Every call
blocks, as in the seed. Errors are :mod:`herald.client`'s (``ValidationError`` naming the field, and so on),
except where the seed answers instead of raising: ``verify_otp`` gives ``(False, reason)`` and
``get_delivery_report`` gives None for an unknown message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

from herald.client import APIError, Herald, NotFoundError, to_send_request
from herald.client import DeliveryReport as HeraldReport

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_AGENT = "otp-agent"
OTP = "otp"


class Priority(Enum):
    """Seed 003's priorities; the values are Herald's priority names."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


@dataclass
class MessageRequest:
    """One message as seed 003 writes it. ``message_type`` names the platform when it is one (``sms``,
    ``whatsapp``, ``voice`` or ``call``, ``email``); ``otp`` sends a generated code; anything else (``alert``,
    ``notification``, ``reminder``) goes by SMS and is kept as ``governance_metadata.message_type``. A naive
    ``scheduled_for`` is local time, as ``datetime.now()`` gives it."""

    phone_number: str
    message_type: str
    content: str = ""
    priority: Priority = Priority.MEDIUM
    scheduled_for: datetime | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryReport:
    """Seed 003's delivery report: ``status``, ``channel`` (the platform it went by) and ``attempts`` (how many
    delivery attempts were made); ``details`` is Herald's whole report (every attempt, times, parts)."""

    message_id: str
    status: str
    channel: str
    attempts: int
    last_error: str | None
    cost: float
    sent_at: str | None
    delivered_at: str | None
    details: HeraldReport


class IntelligentOTPAgent:
    """Seed 003's agent, sending through Herald.

    ``base_url`` defaults to ``$HERALD_URL`` (else http://127.0.0.1:8000), ``api_key`` to ``$HERALD_API_KEY``,
    ``agent_id`` (who sends the non-OTP messages) to ``$HERALD_AGENT_ID`` (else ``otp-agent``);
    ``start_processing`` registers that agent at ``maturity_level`` if Herald does not know it. OTP codes are
    the tenant's own, as in the seed, not an agent's."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        agent_id: str | None = None,
        maturity_level: str = "SUPERVISED",
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url or os.environ.get("HERALD_URL") or DEFAULT_URL
        self.agent_id = agent_id or os.environ.get("HERALD_AGENT_ID") or DEFAULT_AGENT
        self.maturity_level = maturity_level
        self.herald = Herald(self.base_url, api_key, agent_id=self.agent_id, timeout=timeout)

    def __enter__(self) -> IntelligentOTPAgent:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_processing()

    def start_processing(self) -> None:
        """Check that Herald and a worker answer (a ServerError when no worker is alive: nothing would be sent)
        and register the sending agent if Herald does not know it yet."""
        self.herald.health()
        try:
            self.herald.get_agent(self.agent_id)
        except NotFoundError:
            self.herald.create_agent(self.agent_id, self.maturity_level, name="Seed 003 OTP agent")

    def stop_processing(self) -> None:
        """Close the connection to Herald; what was accepted is still delivered by the server."""
        self.herald.close()

    # -- sending --------------------------------------------------------------------------------------------

    def send_otp(self, phone_number: str, user_id: str | None = None) -> str:
        """Generate and send a code to ``phone_number``; answers the id of the message carrying it (for
        :meth:`get_delivery_report`). Herald keeps only the code's hash and identifies the person by the
        number, so ``user_id`` is accepted for the seed's signature but not stored."""
        verification = self.herald.send_otp(phone_number)
        return verification.message_ids[-1] if verification.message_ids else verification.id

    def send_message(self, request: MessageRequest) -> str:
        """Send one message (an ``otp`` one as :meth:`send_otp`); answers its id."""
        if _is_otp(request):
            return self.send_otp(request.phone_number, user_id=request.user_id)
        return self.herald.send_message(**self._send_fields(request)).id

    def send_bulk_messages(self, messages: Iterable[MessageRequest]) -> list[str | None]:
        """Send many messages in one request (``otp`` ones each as :meth:`send_otp`), each judged on its own;
        answers their ids in the order given, None for a message Herald refused."""
        requests = list(messages)
        ids: list[str | None] = [None] * len(requests)
        plain = [i for i, r in enumerate(requests) if not _is_otp(r)]
        for i, r in enumerate(requests):
            if _is_otp(r):
                ids[i] = self.send_otp(r.phone_number, user_id=r.user_id)
        if plain:
            result = self.herald.send_bulk_messages([self._send_fields(requests[i]) for i in plain])
            for item in result.items:
                ids[plain[item.index]] = item.id
        return ids

    def load_messages_from_json(self, path: str | Path) -> int:
        """Send every message of a seed 003 JSON file; answers how many Herald accepted."""
        return self.herald.load_messages_from_json(path, agent_id=self.agent_id).accepted

    def _send_fields(self, request: MessageRequest) -> dict[str, Any]:
        """The Herald send request for a seed 003 message, mapped as the SDK maps its files."""
        seed: dict[str, Any] = {
            "phone_number": request.phone_number,
            "message_type": request.message_type,
            "content": request.content,
            "priority": Priority(request.priority).value,
        }
        if request.scheduled_for is not None:
            seed["scheduled_for"] = request.scheduled_for.astimezone().isoformat()  # naive: local time
        if request.metadata or request.user_id:
            user = {"user_id": request.user_id} if request.user_id else {}
            seed["governance_metadata"] = {**request.metadata, **user}
        fields: dict[str, Any] = to_send_request(seed, agent_id=self.agent_id)
        return fields

    # -- answers --------------------------------------------------------------------------------------------

    def verify_otp(self, phone_number: str, code: str) -> tuple[bool, str]:
        """``(True, ...)`` when ``code`` is the one sent to ``phone_number``; otherwise ``(False, why)``."""
        try:
            check = self.herald.verify_otp(phone_number, code)
        except APIError as exc:
            if exc.status >= 500:
                raise
            return False, exc.detail
        if check.valid:
            return True, "OTP verified successfully"
        return False, _REFUSALS.get(check.status, f"OTP not verified ({check.status})")

    def get_delivery_report(self, message_id: str) -> DeliveryReport | None:
        """The message's status, channel and attempt count (None for a message Herald does not know)."""
        try:
            report = self.herald.get_delivery_report(message_id)
        except NotFoundError:
            return None
        return DeliveryReport(
            message_id=report.message_id,
            status=report.status,
            channel=report.channel.platform,
            attempts=report.attempt_count,
            last_error=report.last_error,
            cost=report.cost,
            sent_at=report.timestamps.sent_at,
            delivered_at=report.timestamps.delivered_at,
            details=report,
        )

    def get_metrics(self, hours: int = 24) -> dict[str, Any]:
        """Seed 003's metrics over the last ``hours``: ``database_stats`` (sent, failed, ``success_rate`` as a
        fraction of finished messages, None before any finished; cost), ``queue_size`` (messages queued or
        being sent now), ``queue`` by status (awaiting approval too) and ``channels``, the figures per channel."""
        figures = self.herald.get_metrics(hours=hours)
        queue = figures.queue.to_dict() if figures.queue is not None else {}
        return {
            "database_stats": {
                "total_messages": figures.sent + figures.failed,
                "sent": figures.sent,
                "failed": figures.failed,
                "success_rate": figures.success_rate,
                "cost": figures.cost,
            },
            "queue_size": int(queue.get("queued", 0)) + int(queue.get("sending", 0)),
            "queue": queue,
            "channels": [c.to_dict() for c in figures.channels],
            "since": figures.since,
        }


_REFUSALS = {
    "pending": "Invalid OTP code",
    "max_attempts_reached": "Too many attempts: request a new code",
    "expired": "OTP expired: request a new code",
    "canceled": "OTP was cancelled: request a new code",
    "approved": "OTP already used",
}


def _is_otp(request: MessageRequest) -> bool:
    return request.message_type.strip().lower() == OTP


__all__ = ["DeliveryReport", "IntelligentOTPAgent", "MessageRequest", "Priority"]
