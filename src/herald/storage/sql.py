"""The hot SQL: hand-written statements the background loops run over and over, named and kept together.

Everything else is built with SQLAlchemy where it is used. These are written out because one statement does
what the ORM would need several round-trips for (the outbox claim, the circuit upsert), or because they read
server state the ORM has no words for. Each carries its bind types, so callers pass plain Python values.

A claim (:class:`NamedClaim`) is run through :func:`herald.storage.claims.claim`, like every other claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String, Text, bindparam, text
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

from herald.storage.types import UTCDateTime

_TS = UTCDateTime()


@dataclass(frozen=True, slots=True)
class NamedClaim:
    """A claim written by hand: one statement that picks due rows, locks, leases and returns them.

    ``postgresql`` locks with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers take disjoint rows; ``sqlite``
    leaves it out (the engine begins every transaction with ``BEGIN IMMEDIATE``: one writer at a time).
    ``postgresql_setup`` runs first, in the same transaction (planner settings made ``LOCAL`` to it).
    """

    name: str
    postgresql: TextualSelect
    sqlite: TextualSelect
    postgresql_setup: tuple[TextClause, ...] = ()

    def statement(self, dialect: str) -> TextualSelect:
        return self.postgresql if dialect == "postgresql" else self.sqlite

    def setup(self, dialect: str) -> tuple[TextClause, ...]:
        return self.postgresql_setup if dialect == "postgresql" else ()


# -- the outbox ---------------------------------------------------------------------------------------------

_OUTBOX_CLAIM = """
UPDATE messages
   SET status = 'sending', lease_owner = :owner, lease_expires_at = :lease_until,
       attempts = attempts + 1, updated_at = :now
 WHERE id IN (
       SELECT id FROM messages
        WHERE status = 'queued' AND run_at <= :now
        ORDER BY priority, run_at
        LIMIT :limit {lock})
RETURNING id, tenant_id, agent_id, platform, recipient_id, channel_id, simulated, subject, content,
          attempts, max_attempts, priority, route_plan, route_step, sealed_content, reply_context,
          actions
"""


def _outbox_claim(lock: str) -> TextualSelect:
    return (
        text(_OUTBOX_CLAIM.format(lock=lock))
        .bindparams(
            bindparam("now", type_=_TS),
            bindparam("lease_until", type_=_TS),
            bindparam("owner", type_=String()),
            bindparam("limit", type_=Integer()),
        )
        .columns(
            simulated=Boolean(),
            route_plan=JSON(),
            sealed_content=LargeBinary(),
            reply_context=JSON(),
            actions=JSON(),
        )
    )


OUTBOX_CLAIM = NamedClaim(
    "outbox claim",
    postgresql=_outbox_claim("FOR UPDATE SKIP LOCKED"),
    sqlite=_outbox_claim(""),
    # Walk ix_messages_claim in order and stop at the limit. Without fresh statistics the planner would read
    # every queued row and sort them, which grows with the backlog.
    postgresql_setup=(text("SET LOCAL enable_sort = off"),),
)
"""The worker's claim: the ``:limit`` due queued messages in priority order become ``sending``, leased to
``:owner`` until ``:lease_until`` with one more attempt counted, and come back as the worker needs them
(:class:`herald.pipeline.outbox.Claimed`). One statement, so a claim is one round-trip."""

OUTBOX_RECLAIM = text(
    """
UPDATE messages
   SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
       sealed_content = CASE WHEN attempts >= max_attempts THEN NULL ELSE sealed_content END,
       last_error = 'lease expired: the worker holding it stopped',
       lease_owner = NULL, lease_expires_at = NULL, run_at = :now, updated_at = :now
 WHERE status = 'sending' AND lease_expires_at < :now
   AND NOT (COALESCE(lease_owner, '') = :owner AND id IN :holding)
RETURNING id, tenant_id, platform, status
"""
).bindparams(bindparam("now", type_=_TS), bindparam("holding", expanding=True, type_=String))
"""A lease that ran out means its worker died (or stalled past the lease): put the message back, or fail it
if its attempts are spent, so a message that kills workers cannot kill them forever. A failed message drops
its sealed content (see ``Message.sealed_content``). The reclaiming worker (``:owner``) leaves alone the
messages it is still sending (``:holding``): a worker that stalled past its own lease would otherwise put them
back and send them a second time itself."""

EXPIRE_APPROVALS = text(
    """
UPDATE messages SET status = 'expired', expires_at = NULL, sealed_content = NULL, updated_at = :now
 WHERE status = 'pending_approval' AND expires_at <= :now
RETURNING id, tenant_id, platform
"""
).bindparams(bindparam("now", type_=_TS))
"""Messages that waited for approval past their time expire (and drop their sealed content); the worker
runs this with the reclaim, about once a second."""

QUEUE_DEPTH = text(
    "SELECT status, COUNT(*) FROM messages WHERE status IN ('queued', 'sending', 'pending_approval') GROUP BY status"
)
"""How many messages wait, are in flight and await approval (``/metrics``' queue depth; partial indexes
keep it cheap however many finished messages there are)."""


# -- circuit breakers ---------------------------------------------------------------------------------------

CIRCUIT_FAILURES = text(
    """
INSERT INTO channel_health (channel_id, state, consecutive_failures, opened_at, last_error, updated_at)
VALUES (:cid, CASE WHEN :n >= :threshold THEN 'open' ELSE 'closed' END, :n,
        CASE WHEN :n >= :threshold THEN :now END, :err, :now)
ON CONFLICT (channel_id) DO UPDATE SET
    consecutive_failures = channel_health.consecutive_failures + :n,
    state = CASE WHEN channel_health.consecutive_failures + :n >= :threshold THEN 'open' ELSE channel_health.state END,
    opened_at = CASE WHEN channel_health.consecutive_failures + :n >= :threshold THEN :now
                     ELSE channel_health.opened_at END,
    last_error = :err, updated_at = :now
"""
).bindparams(
    bindparam("now", type_=_TS),
    bindparam("n", type_=Integer()),
    bindparam("threshold", type_=Integer()),
    bindparam("cid", type_=String()),
    bindparam("err", type_=Text()),
)
"""Add a batch's ``:n`` retryable failures to a channel's count, opening its circuit at ``:threshold``: one
upsert, so workers recording at once add up instead of overwriting each other."""

CIRCUIT_SUCCESS = text(
    "UPDATE channel_health SET state = 'closed', consecutive_failures = 0, opened_at = NULL, probe_owner = NULL, "
    "probe_until = NULL, updated_at = :now "
    "WHERE channel_id = :cid AND (state <> 'closed' OR consecutive_failures > 0)"
).bindparams(bindparam("now", type_=_TS))
"""A success closes a channel's circuit; a healthy channel's row is not rewritten on every batch."""

CIRCUIT_PROBE_CLAIM = text(
    "UPDATE channel_health SET probe_owner = :owner, probe_until = :until "
    "WHERE channel_id = :cid AND state = 'open' AND opened_at <= :ready "
    "AND (probe_until IS NULL OR probe_until <= :now)"
).bindparams(
    bindparam("now", type_=_TS),
    bindparam("ready", type_=_TS),
    bindparam("until", type_=_TS),
    bindparam("cid", type_=String()),
    bindparam("owner", type_=String()),
)
"""Claim an open circuit's one probe once its cool-down (``:ready`` = now - cool-down) has passed and no probe is
held: one conditional UPDATE, so of the workers asking at once exactly one changes the row (PostgreSQL re-checks
the condition after the winner commits; SQLite has one writer)."""

CIRCUIT_PROBE_RELEASE = text(
    "UPDATE channel_health SET probe_owner = NULL, probe_until = NULL WHERE channel_id = :cid AND probe_owner = :owner"
).bindparams(bindparam("cid", type_=String()), bindparam("owner", type_=String()))
"""Give a probe back once its outcome is recorded (a failure has re-opened the circuit meanwhile, a message that
was not tried leaves it as it was), so the next probe need not wait for the claim to run out."""


# -- the events feed ----------------------------------------------------------------------------------------

OLDEST_WRITER = text(
    "SELECT min(xact_start) FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)
"""PostgreSQL: the start of the oldest transaction that has written something and is still open (other than
ours). An event it built may commit later with an older id, so readers of the events table stop short of it
however long it runs."""
