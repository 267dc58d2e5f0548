"""Accepting many messages at once: each item is judged on its own, the accepted ones are written together.

One request of up to :data:`MAX_ITEMS` items runs in one transaction: every item goes through the same
``prepare`` as a single send (governance, templates, routing; no writes), sharing one :class:`planner.Memo` so
contacts, named channels and circuit states are read once per request, then all accepted messages, their audit
entries and events are written with one INSERT (COPY on PostgreSQL) per table. An item that fails is reported
with its index, status and field; the others are accepted regardless.

Per-item idempotency keys are the batched form of :mod:`herald.web.api.idempotency`, in the same table:

- all keys of the request are looked up in a few ``IN (...)`` queries first; a key already used with the same
  item answers the original message id (``replayed``), with another item it is a 409 for that item;
- the new keys are claimed with ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` in the transaction that writes
  the messages, so a key and its message commit together; a key a concurrent request claimed first is read back
  after that request commits and answered as a replay (or a conflict);
- a key that appears twice in one request is an error for the second item; an item that fails does not use
  up its key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, any_, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, RequestError
from herald.core.intent import Intent
from herald.core.principal import Principal
from herald.pipeline import accept as service
from herald.pipeline.accept import Prepared
from herald.pipeline.routing import planner
from herald.storage.bulk import table_of
from herald.storage.models import IdempotencyRecord
from herald.storage.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

MAX_ITEMS = 10_000
_IN_CHUNK = 1_000  # ids per IN (...): far below every driver's parameter limit
_ITEM_SCOPE = "POST /api/v1/messages/bulk item"


def fingerprint(item: dict[str, Any]) -> str:
    """What an idempotency key is bound to: the item as sent, without its key."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{_ITEM_SCOPE}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One valid item: what to send, and its idempotency key with the item's fingerprint."""

    index: int
    intent: Intent
    key: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one item: a message id (new or replayed) or an error."""

    index: int
    message_id: str | None = None
    status: str | None = None
    replayed: bool = False
    error: dict[str, Any] | None = None

    @classmethod
    def failed(cls, index: int, status: int, field: str | None, detail: str, **extra: Any) -> Outcome:
        return cls(index, error={"status": status, "field": field, "detail": detail, **extra})

    @classmethod
    def refused(cls, index: int, exc: RequestError) -> Outcome:
        return cls.failed(index, exc.status, exc.field, exc.detail)

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"index": self.index, "error": self.error}
        body: dict[str, Any] = {"index": self.index, "id": self.message_id}
        if self.replayed:
            body["replayed"] = True
        else:
            body["status"] = self.status
        return body


def summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The response body: counts, then every item in index order."""
    ordered = sorted(outcomes, key=lambda o: o.index)
    rejected = sum(1 for o in ordered if o.error is not None)
    return {
        "accepted": len(ordered) - rejected,
        "rejected": rejected,
        "replayed": sum(1 for o in ordered if o.replayed),
        "items": [o.as_dict() for o in ordered],
    }


async def accept_many(rt: Runtime, principal: Principal, entries: Sequence[Entry]) -> list[Outcome]:
    """Accept every entry that passes, in one transaction; one outcome per entry, in no particular order."""
    outcomes: list[Outcome] = []
    first_use: dict[str, int] = {}
    todo: list[Entry] = []
    for entry in entries:
        if entry.key is not None:
            if entry.key in first_use:
                outcomes.append(
                    Outcome.refused(
                        entry.index,
                        Conflict(
                            f"item {first_use[entry.key]} of this request already uses this key",
                            field="idempotency_key",
                        ),
                    )
                )
                continue
            first_use[entry.key] = entry.index
        todo.append(entry)

    async with rt.sessions.begin() as session:
        known = await _records(session, principal.tenant_id, list(first_use))
        fresh = []
        for entry in todo:
            record = known.get(entry.key) if entry.key is not None else None
            if record is None:
                fresh.append(entry)
            else:
                outcomes.append(_answer(entry, record))

        memo = planner.Memo()
        await memo.preload_contacts(
            session, principal.tenant_id, {e.intent.contact_id for e in fresh if e.intent.contact_id}
        )
        prepared: list[tuple[Entry, Prepared]] = []
        for entry in fresh:
            try:
                prepared.append(
                    (entry, await service.prepare(rt, session, principal, entry.intent, memo=memo))
                )
            except RequestError as exc:
                outcomes.append(Outcome.refused(entry.index, exc))  # the pipeline keeps its audit entry

        # Keys are claimed in sorted order, so two requests sharing keys wait for each other instead of deadlocking.
        keyed = sorted(((e, p) for e, p in prepared if e.key is not None), key=lambda pair: str(pair[0].key))
        lost = await _claim(session, principal.tenant_id, keyed)
        if lost:
            # Claimed by a concurrent request that has committed since: answer as it did.
            winners = await _records(session, principal.tenant_id, [e.key for e in lost if e.key is not None])
            for entry in lost:
                assert entry.key is not None
                outcomes.append(_answer(entry, winners[entry.key]))
        lost_ids = {e.index for e in lost}
        batch = [p for e, p in prepared if e.index not in lost_ids]
        await service.write(rt, session, batch)
        outcomes.extend(
            Outcome(e.index, p.values["id"], p.values["status"])
            for e, p in prepared
            if e.index not in lost_ids
        )
    return outcomes


def _answer(entry: Entry, record: IdempotencyRecord) -> Outcome:
    """A replay when the key was used with this very item, else a conflict naming the key."""
    message_id = record.response.get("id") if record.request_hash == entry.fingerprint else None
    if message_id is None:
        return Outcome.refused(
            entry.index,
            Conflict(
                "this idempotency_key was already used with a different request", field="idempotency_key"
            ),
        )
    return Outcome(entry.index, str(message_id), replayed=True)


async def _records(session: AsyncSession, tenant_id: str, keys: list[str]) -> dict[str, IdempotencyRecord]:
    """The records of ``keys`` that exist. PostgreSQL gets one ``= ANY(array)`` (hashed whatever the plan, where a
    thousand-parameter IN list is checked row by row when the planner picks a scan); SQLite, IN lists."""
    if not keys:
        return {}
    mine = IdempotencyRecord.tenant_id == tenant_id
    if (await session.connection()).dialect.name == "postgresql":
        wanted = bindparam("keys", keys, type_=postgresql.ARRAY(String))
        queries = [select(IdempotencyRecord).where(mine, IdempotencyRecord.key == any_(wanted))]
    else:
        queries = [
            select(IdempotencyRecord).where(mine, IdempotencyRecord.key.in_(keys[start : start + _IN_CHUNK]))
            for start in range(0, len(keys), _IN_CHUNK)
        ]
    found: dict[str, IdempotencyRecord] = {}
    for query in queries:
        found.update((r.key, r) for r in (await session.execute(query)).scalars())
    return found


# PostgreSQL: claim a batch of keys in one statement with three array parameters (a multi-row INSERT would bind
# six parameters per key); the answer lists the keys this request now holds.
_CLAIM_PG = text(
    """
INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, response, created_at)
SELECT :tenant, k, h, 201, CAST(r AS json), :now FROM unnest(:keys, :hashes, :responses) AS u(k, h, r)
ON CONFLICT (tenant_id, key) DO NOTHING
RETURNING key
"""
).bindparams(
    bindparam("keys", type_=postgresql.ARRAY(String)),
    bindparam("hashes", type_=postgresql.ARRAY(String)),
    bindparam("responses", type_=postgresql.ARRAY(String)),
    bindparam("now", type_=UTCDateTime()),
)


async def _claim(session: AsyncSession, tenant_id: str, keyed: list[tuple[Entry, Prepared]]) -> list[Entry]:
    """Record each key with its message id; return the entries whose key another request holds."""
    if not keyed:
        return []
    now = utcnow()
    responses = [{"id": p.values["id"], "status": p.values["status"]} for _, p in keyed]
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        params = {
            "tenant": tenant_id, "now": now, "keys": [e.key for e, _ in keyed],
            "hashes": [e.fingerprint for e, _ in keyed], "responses": [json.dumps(r) for r in responses],
        }  # fmt: skip
        claimed = set((await conn.execute(_CLAIM_PG, params)).scalars())
    else:
        rows = [
            {"tenant_id": tenant_id, "key": e.key, "request_hash": e.fingerprint, "status_code": 201,
             "response": response, "created_at": now}
            for (e, _), response in zip(keyed, responses, strict=True)
        ]  # fmt: skip
        table = table_of(IdempotencyRecord)
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        claimed = set((await conn.execute(statement.returning(table.c.key), rows)).scalars())
    return [e for e, _ in keyed if e.key not in claimed]
