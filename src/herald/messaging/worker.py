"""The worker: claims due messages in batches, sends them through their channels, records the outcome.

Pipelined: while one batch is being sent the next can be claimed, up to ``worker_concurrency`` messages in
flight. No transaction is held while a provider is called; a worker killed at any point leaves leased rows that
another worker reclaims when the lease runs out (at-least-once delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.audit import audit_row, event_row
from herald.channels import Channel, OutboundMessage
from herald.errors import ConfigError, DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from herald.ids import new_id
from herald.messaging import outbox
from herald.messaging.service import Status
from herald.runtime import Runtime
from herald.storage.models import Attempt, AuditEntry, Event, Message, WorkerHeartbeat
from herald.storage.types import utcnow

log = logging.getLogger(__name__)

_HEARTBEAT_SECONDS = 5.0
_MAINTENANCE_SECONDS = 1.0
WORKER_ACTOR = "worker"


@dataclass(slots=True)
class Outcome:
    claimed: outbox.Claimed
    provider: str
    started_at: datetime
    duration: float
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with equal jitter; a provider's retry-after wins when it asks for longer."""
    delay: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(retry_after, 0.0)
    return delay


class Worker:
    def __init__(self, rt: Runtime, worker_id: str | None = None) -> None:
        self.rt = rt
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-8:]}"
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_maintenance = 0.0
        self._last_heartbeat = 0.0
        self._started_at = utcnow()
        self.last_loop_at: float = 0.0
        self.claimed_total = 0

    # -- the loop -------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.rt.settings
        await self.rt.waker.listen(settings.async_database_url)
        log.info("worker %s started", self.id)
        try:
            while not stop.is_set():
                self.last_loop_at = time.monotonic()
                try:
                    await self._maintain()
                    room = settings.worker_concurrency - self._inflight
                    claimed = await self._claim(min(room, settings.worker_batch_size)) if room > 0 else []
                except Exception:
                    log.exception("worker %s: database error; retrying after the poll interval", self.id)
                    claimed = []
                if claimed:
                    self._spawn(claimed)
                    if (
                        len(claimed) == settings.worker_batch_size
                        and self._inflight < settings.worker_concurrency
                    ):
                        continue
                await self.rt.waker.wait(settings.poll_interval_seconds)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            log.info("worker %s stopped", self.id)

    def _spawn(self, claimed: list[outbox.Claimed]) -> None:
        self._inflight += len(claimed)
        task = asyncio.create_task(self._process(claimed))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._inflight -= len(claimed)
            self.rt.waker.wake()  # room for more

        task.add_done_callback(done)

    async def run_once(self) -> int:
        """Claim and fully process one batch (tests and benchmarks drive the worker with this)."""
        await self._maintain(force=True)
        claimed = await self._claim(self.rt.settings.worker_batch_size)
        if claimed:
            await self._process(claimed)
        return len(claimed)

    async def drain(self, max_batches: int = 10_000) -> int:
        total = 0
        for _ in range(max_batches):
            done = await self.run_once()
            total += done
            if done == 0:
                break
        return total

    # -- steps ----------------------------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[outbox.Claimed]:
        async with self.rt.sessions.begin() as session:
            claimed = await outbox.claim(
                session, self.rt.dialect, self.id, limit, utcnow(), self.rt.settings.lease_seconds
            )
        self.claimed_total += len(claimed)
        return claimed

    async def _process(self, claimed: list[outbox.Claimed]) -> None:
        outcomes = await asyncio.gather(*(self._send(c) for c in claimed))
        for attempt in range(3):
            try:
                async with self.rt.sessions.begin() as session:
                    await self._complete(session, outcomes)
                break
            except Exception:
                # The lease still guards these rows; if completion keeps failing they are retried after it.
                log.exception(
                    "worker %s: recording %d outcomes failed (try %d)", self.id, len(outcomes), attempt + 1
                )
                await asyncio.sleep(0.2 * (attempt + 1))
        for outcome in outcomes:
            self.rt.metrics.attempt_seconds.labels(
                outcome.provider, "sent" if outcome.ok else "error"
            ).observe(outcome.duration)

    async def _send(self, claimed: outbox.Claimed) -> Outcome:
        started_at = utcnow()
        clock = time.perf_counter()
        provider = "devinbox"
        try:
            channel = await self._channel_for(claimed)
            provider = channel.provider
            message = OutboundMessage(
                id=claimed.id,
                tenant_id=claimed.tenant_id,
                platform=claimed.platform,
                recipient_id=claimed.recipient_id,
                content=claimed.content,
                subject=claimed.subject,
                attempt=claimed.attempts,
            )
            async with asyncio.timeout(self.rt.settings.send_timeout_seconds):
                provider_id = await channel.send(message)
        except TimeoutError:
            return self._failed(claimed, provider, started_at, clock, "timed out", None, permanent=False)
        except RetryableDeliveryError as exc:
            return self._failed(
                claimed, provider, started_at, clock, exc.reason, exc.retry_after, permanent=False
            )
        except (PermanentDeliveryError, ConfigError) as exc:
            return self._failed(claimed, provider, started_at, clock, str(exc), None, permanent=True)
        except DeliveryError as exc:
            return self._failed(claimed, provider, started_at, clock, exc.reason, None, permanent=False)
        except Exception as exc:
            log.exception("channel %s raised unexpectedly for %s", provider, claimed.id)
            return self._failed(claimed, provider, started_at, clock, f"internal error: {type(exc).__name__}", None,
                                permanent=False)  # fmt: skip
        return Outcome(
            claimed, provider, started_at, time.perf_counter() - clock, provider_message_id=provider_id
        )

    @staticmethod
    def _failed(
        claimed: outbox.Claimed,
        provider: str,
        started_at: datetime,
        clock: float,
        error: str,
        retry_after: float | None,
        *,
        permanent: bool,
    ) -> Outcome:
        return Outcome(
            claimed, provider, started_at, time.perf_counter() - clock,
            error=error, retry_after=retry_after, permanent=permanent,
        )  # fmt: skip

    async def _channel_for(self, claimed: outbox.Claimed) -> Channel:
        if claimed.channel_id is None:
            return self.rt.devinbox_channel(claimed.tenant_id, claimed.platform)
        return await self.rt.channel(claimed.channel_id)

    async def _complete(self, session: AsyncSession, outcomes: list[Outcome]) -> None:
        """Record every outcome of a batch in one transaction: status, attempt rows, audit and events."""
        now = utcnow()
        settings = self.rt.settings
        sent: list[dict[str, Any]] = []
        retry: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        attempts: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for o in outcomes:
            c = o.claimed
            attempts.append(
                {
                    "id": new_id("att"),
                    "tenant_id": c.tenant_id,
                    "message_id": c.id,
                    "channel_id": c.channel_id,
                    "provider": o.provider,
                    "number": c.attempts,
                    "started_at": o.started_at,
                    "duration_ms": round(o.duration * 1000, 3),
                    "outcome": "sent" if o.ok else ("failed" if o.permanent else "retry"),
                    "provider_message_id": o.provider_message_id,
                    "error": o.error,
                    "retry_after": o.retry_after,
                }
            )
            if o.ok:
                sent.append({"b_id": c.id, "b_pid": o.provider_message_id, "b_now": now})
                detail: dict[str, Any] = {
                    "provider": o.provider,
                    "provider_message_id": o.provider_message_id,
                }
                audits.append(
                    audit_row(c.tenant_id, WORKER_ACTOR, "message.sent", "message", c.id, detail, at=now)
                )
                events.append(event_row(c.tenant_id, "message.sent", c.id, detail, at=now))
                self.rt.metrics.messages.labels(Status.SENT, c.platform).inc()
            elif o.permanent or c.attempts >= c.max_attempts:
                failed.append({"b_id": c.id, "b_error": o.error, "b_now": now})
                detail = {"provider": o.provider, "error": o.error, "attempts": c.attempts}
                audits.append(
                    audit_row(c.tenant_id, WORKER_ACTOR, "message.failed", "message", c.id, detail, at=now)
                )
                events.append(event_row(c.tenant_id, "message.failed", c.id, detail, at=now))
                self.rt.metrics.messages.labels(Status.FAILED, c.platform).inc()
            else:
                delay = backoff_seconds(c.attempts, settings.retry_base_seconds, settings.retry_max_seconds,
                                        o.retry_after)  # fmt: skip
                run_at = now + timedelta(seconds=delay)
                retry.append({"b_id": c.id, "b_error": o.error, "b_now": now, "b_run_at": run_at})
                detail = {"provider": o.provider, "error": o.error, "attempts": c.attempts,
                          "next_attempt_at": run_at.isoformat()}  # fmt: skip
                audits.append(
                    audit_row(
                        c.tenant_id, WORKER_ACTOR, "message.retry_scheduled", "message", c.id, detail, at=now
                    )
                )
        await self._update(session, sent, {"status": Status.SENT, "sent_at": bindparam("b_now"),
                                           "provider_message_id": bindparam("b_pid"), "last_error": None})  # fmt: skip
        await self._update(session, failed, {"status": Status.FAILED, "last_error": bindparam("b_error")})
        await self._update(session, retry, {"status": Status.QUEUED, "run_at": bindparam("b_run_at"),
                                            "last_error": bindparam("b_error")})  # fmt: skip
        await session.execute(insert(Attempt), attempts)
        if audits:
            await session.execute(insert(AuditEntry), audits)
        if events:
            await session.execute(insert(Event), events)

    async def _update(
        self, session: AsyncSession, rows: list[dict[str, Any]], values: dict[str, Any]
    ) -> None:
        """Executemany; guarded by the lease so a worker that lost its lease cannot overwrite the new owner."""
        if not rows:
            return
        table = Message.__table__
        assert isinstance(table, Table)
        statement = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.lease_owner == self.id,
                table.c.status == Status.SENDING,
            )
            .values(lease_owner=None, lease_expires_at=None, updated_at=bindparam("b_now"), **values)
        )
        conn = await session.connection()
        await conn.execute(statement, rows)

    # -- housekeeping ---------------------------------------------------------------------------------------

    async def _maintain(self, *, force: bool = False) -> None:
        clock = time.monotonic()
        if force or clock - self._last_maintenance >= _MAINTENANCE_SECONDS:
            self._last_maintenance = clock
            await self.reclaim_and_expire()
        if force or clock - self._last_heartbeat >= _HEARTBEAT_SECONDS:
            self._last_heartbeat = clock
            await self.heartbeat()

    async def reclaim_and_expire(self) -> None:
        now = utcnow()
        async with self.rt.sessions.begin() as session:
            reclaimed = (await session.execute(outbox.RECLAIM, {"now": now})).all()
            expired = (await session.execute(outbox.EXPIRE_APPROVALS, {"now": now})).all()
            audits = [
                audit_row(
                    r.tenant_id,
                    WORKER_ACTOR,
                    "message.lease_expired",
                    "message",
                    r.id,
                    {"status": r.status},
                    at=now,
                )
                for r in reclaimed
            ] + [
                audit_row(r.tenant_id, WORKER_ACTOR, "message.expired", "message", r.id, at=now)
                for r in expired
            ]
            events = [event_row(r.tenant_id, "message.expired", r.id, at=now) for r in expired] + [
                event_row(r.tenant_id, "message.failed", r.id, {"error": "lease expired"}, at=now)
                for r in reclaimed
                if r.status == Status.FAILED
            ]
            if audits:
                await session.execute(insert(AuditEntry), audits)
            if events:
                await session.execute(insert(Event), events)
        if reclaimed:
            log.warning("reclaimed %d messages whose lease expired", len(reclaimed))

    async def heartbeat(self) -> None:
        now = utcnow()
        async with self.rt.sessions.begin() as session:
            result = await session.execute(
                update(WorkerHeartbeat).where(WorkerHeartbeat.id == self.id).values(last_seen=now)
            )
            if getattr(result, "rowcount", 0) == 0:
                session.add(
                    WorkerHeartbeat(
                        id=self.id, hostname=socket.gethostname(), pid=os.getpid(),
                        started_at=self._started_at, last_seen=now,
                    )
                )  # fmt: skip

    async def stop_heartbeat(self) -> None:
        with contextlib.suppress(Exception):
            async with self.rt.sessions.begin() as session:
                await session.execute(
                    update(WorkerHeartbeat)
                    .where(WorkerHeartbeat.id == self.id)
                    .values(last_seen=utcnow() - timedelta(days=1))
                )
