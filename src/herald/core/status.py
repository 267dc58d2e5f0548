"""A message's states, one vocabulary for the pipeline, producers, routes and the dashboard.

``pending_approval → queued → sending → sent → delivered → read``, ending in ``failed``, ``rejected``,
``cancelled`` or ``expired``. A message a digest rule matches waits ``held`` where it would be ``queued``, and ends
``digested`` once the one digest message that lists it is written (:mod:`herald.pipeline.digests`). Members are strings, so they compare equal to the stored column and serialise as is.
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
    HELD = "held"  # waiting in an open digest instead of the outbox
    DIGESTED = "digested"  # sent as a line of a digest message (``digest_message_id``), never on its own


ALL_STATUSES = frozenset(Status)
CANCELLABLE = frozenset({Status.PENDING_APPROVAL, Status.QUEUED, Status.HELD})
# States after which nothing more happens to a message but receipts (delivered, read).
FINISHED = frozenset({Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED, Status.REJECTED,
                      Status.CANCELLED, Status.EXPIRED, Status.DIGESTED})  # fmt: skip
