"""Herald's Python SDK: a typed client for the REST API, blocking (:class:`Herald`) or asyncio
(:class:`AsyncHerald`), with the same methods; seed 003's names included.

    from herald.client import Herald, ValidationError

    with Herald("http://127.0.0.1:8000", api_key, agent_id="agent_123") as herald:
        message = herald.send_message(platform="sms", recipient_id="+447700900123", content="Your code is ready")
        report = herald.get_delivery_report(message.id)
        print(report.status, report.channel.platform, len(report.attempts))
        result = herald.load_messages_from_json("messages.json")   # seed 003's file format
        print(result.accepted, result.rejected)

Answers are typed records (:class:`Record`): fields are attributes, and for code written against the earlier
dict answers they also read as mappings (``report["status"]``, ``dict(report)``, ``report.to_dict()`` for the
JSON). Seed 003's own calls and shapes are :mod:`herald.compat.otp`. An error answer raises the exception for its status, carrying
the problem details (``.status``, ``.detail``, ``.field``...); see :mod:`herald.client._errors` for the tree. Only
httpx is needed: this package imports nothing of the server.
"""

from herald.client._client import AsyncHerald, Herald
from herald.client._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HeraldError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDenied,
    RateLimitError,
    ServerError,
    ValidationError,
)
from herald.client._files import MessageFileError, read_messages_file, to_send_request
from herald.client._types import (
    Agent,
    AgentRun,
    Alert,
    ApprovalPolicy,
    ApprovalRequest,
    Approver,
    Attempt,
    BulkError,
    BulkItem,
    BulkResult,
    Campaign,
    CampaignRun,
    ChannelFigures,
    DeliveryMetrics,
    DeliveryReport,
    Health,
    HumanDelivery,
    HumanRequest,
    Message,
    MessageDetail,
    Monitor,
    OtpCheck,
    OtpVerification,
    Page,
    Question,
    QueueDepth,
    Record,
    ReportAttempt,
    ReportChannel,
    ReportPart,
    ReportTimestamps,
    Schedule,
    ScheduleExecution,
    Trigger,
    TriggerFiring,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "Agent",
    "AgentRun",
    "Alert",
    "ApprovalPolicy",
    "ApprovalRequest",
    "Approver",
    "AsyncHerald",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "BulkError",
    "BulkItem",
    "BulkResult",
    "Campaign",
    "CampaignRun",
    "ChannelFigures",
    "ConflictError",
    "DeliveryMetrics",
    "DeliveryReport",
    "Health",
    "Herald",
    "HeraldError",
    "HumanDelivery",
    "HumanRequest",
    "Message",
    "MessageDetail",
    "MessageFileError",
    "Monitor",
    "NotFoundError",
    "OtpCheck",
    "OtpVerification",
    "Page",
    "PayloadTooLargeError",
    "PermissionDenied",
    "Question",
    "QueueDepth",
    "RateLimitError",
    "Record",
    "ReportAttempt",
    "ReportChannel",
    "ReportPart",
    "ReportTimestamps",
    "Schedule",
    "ScheduleExecution",
    "ServerError",
    "Trigger",
    "TriggerFiring",
    "ValidationError",
    "read_messages_file",
    "to_send_request",
]
