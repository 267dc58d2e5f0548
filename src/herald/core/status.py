"""A message's states, one vocabulary for the pipeline, producers, routes and the dashboard.

``pending_approval → queued → sending → sent → delivered → read``, ending in ``failed``, ``rejected``,
``cancelled`` or ``expired``. Members are strings, so they compare equal to the stored column and serialise as is.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ALL_STATUSES = frozenset(Status)
CANCELLABLE = frozenset({Status.PENDING_APPROVAL, Status.QUEUED})
# States after which nothing more happens to a message but receipts (delivered, read).
FINISHED = frozenset({Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED, Status.REJECTED,
                      Status.CANCELLED, Status.EXPIRED})  # fmt: skip
