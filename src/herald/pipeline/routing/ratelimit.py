"""Token buckets shared by every worker on one database (table ``rate_buckets``).

A batch asks for one token per message from its channel's bucket and from its (channel, recipient) bucket;
messages that cannot have both wait until the emptier bucket refills. The buckets are read with
``FOR UPDATE`` on PostgreSQL (SQLite's writer lock serialises them), refilled by elapsed time, debited, written
back, all in one short transaction before anything is sent: a send never exceeds the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage.bulk import table_of
from herald.storage.models import RateBucket
from herald.storage.types import utcnow

# Herald stamps a grant when it gates a batch; the request reaches the provider a few to tens of milliseconds
# later, behind the batch's other sends. To keep arrivals (which the provider counts) under a limit too, buckets
# run slightly below it: 97% of the rate and one token less of burst.
RATE_MARGIN = 0.97


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    rate: float  # tokens per second
    burst: float  # bucket capacity

    @classmethod
    def with_margin(cls, key: str, rate: float, burst: float) -> Limit:
        return cls(key, rate * RATE_MARGIN, max(1.0, burst - 1.0))


@dataclass
class _Bucket:
    limit: Limit
    tokens: float
    waiting: int = 0


async def acquire(
    session: AsyncSession, dialect: str, wants: list[list[Limit]], now: datetime
) -> list[float]:
    """For each request (the limits one message must pass), 0.0 if granted, else seconds to wait."""
    limits = {limit.key: limit for request in wants for limit in request}
    if not limits:
        return [0.0] * len(wants)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = table_of(RateBucket)
    connection = await session.connection()  # Core, many parameter sets: compiled once, not per row and batch
    await connection.execute(
        insert(table).on_conflict_do_nothing(index_elements=["key"]),
        [{"key": k, "tokens": limit.burst, "updated_at": now} for k, limit in sorted(limits.items())],
    )
    query = select(RateBucket).where(RateBucket.key.in_(sorted(limits))).order_by(RateBucket.key)
    if dialect == "postgresql":
        query = query.with_for_update()
    rows = list((await session.execute(query)).scalars())
    # The caller's clock was read before the row locks were granted; another worker may have written a later
    # time meanwhile. Never let a bucket's clock go backwards, or the same interval would be credited twice.
    now = max([utcnow(), now, *(row.updated_at for row in rows)])
    buckets: dict[str, _Bucket] = {}
    for row in rows:
        limit = limits[row.key]
        elapsed = max(0.0, (now - row.updated_at).total_seconds())
        buckets[row.key] = _Bucket(limit, min(limit.burst, row.tokens + elapsed * limit.rate))
    waits: list[float] = []
    for request in wants:
        short = [buckets[lim.key] for lim in request if buckets[lim.key].tokens < 1.0]
        if short:
            # Queue behind the messages already waiting on the same bucket, so a backlog is spread over time
            # instead of all coming back at once to be deferred again.
            waits.append(max((1.0 + b.waiting - b.tokens) / b.limit.rate for b in short))
            for b in short:
                b.waiting += 1
            continue
        for lim in request:
            buckets[lim.key].tokens -= 1.0
        waits.append(0.0)
    table = table_of(RateBucket)
    conn = await session.connection()
    await conn.execute(
        update(table)
        .where(table.c.key == bindparam("b_key"))
        .values(tokens=bindparam("b_tokens"), updated_at=now),
        [{"b_key": key, "b_tokens": bucket.tokens} for key, bucket in buckets.items()],
    )
    return waits
