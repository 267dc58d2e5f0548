"""The worker: claims due messages in batches, sends them through their channels, records each outcome.

Pipelined: while one batch is being sent the next can be claimed, up to ``worker_concurrency`` messages in
flight. No transaction is held while a provider is called; a worker killed at any point leaves leased rows that
another worker reclaims when the lease runs out (at-least-once delivery).

**Recording.** Each message's outcome is recorded as soon as the provider answers, not at the end of its batch:
outcomes are group-committed (:class:`~herald.core.batching.GroupCommit`), so the messages that finish together,
from any batch, share one transaction, written within milliseconds of their answers. A worker killed with
``kill -9`` can therefore resend only the messages whose requests were on the wire (or whose answers were not
yet committed, a few milliseconds' worth). When recording fails (the database restarts) the worker keeps
trying, with backoff, for as long as the batch's lease lasts, and extends the lease while it waits, so an
outage shorter than the lease sends nothing twice.

Long content is split here, once, into the parts the channel takes, and each delivered part is recorded with the
outcome, so a retry sends only the parts not yet delivered (see :mod:`herald.pipeline.parts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core import attachments, logs
from herald.core.attachments import Attachment
from herald.core.background import Loop
from herald.core.batching import GroupCommit
from herald.core.errors import ConfigError, DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from herald.core.ids import new_id
from herald.core.status import Status
from herald.pipeline import outbox, parts
from herald.pipeline.routing import circuit, ratelimit
from herald.providers import Action, Channel, OutboundMessage
from herald.storage import outage
from herald.storage.audit import audit_row, event_row
from herald.storage.bulk import insert_rows, table_of
from herald.storage.models import Attempt, AuditEntry, Event, Message, WorkerHeartbeat
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

_HEARTBEAT_SECONDS = 5.0
_MAINTENANCE_SECONDS = 1.0
_RECORD_RETRY_FIRST = 0.05  # the first wait after a failed outcome write, doubling up to the cap
_RECORD_RETRY_CAP = 1.0
_LEASE_MARGIN = 0.1  # of the lease: stop retrying this long before it runs out (clocks differ slightly)
WORKER_ACTOR = "worker"


@dataclass(slots=True)
class Outcome:
    """What became of one claimed message in this batch.

    ``kind``: ``sent``; ``error`` (a provider failure: retried, or final when permanent or out of attempts,
    then the next route step if there is one); ``deferred`` (not tried: a rate limit or a circuit made it
    wait, so no attempt is counted); ``skipped`` (not tried: the circuit is open, so the next step now).
    """

    claimed: outbox.Claimed
    provider: str
    started_at: datetime
    duration: float = 0.0
    kind: str = "sent"
    provider_message_id: str | None = None  # the message's: every part's id, joined with ","
    sent_now: str | None = None  # the ids this attempt delivered (a failed attempt may have delivered parts)
    parts: list[dict[str, Any]] = field(default_factory=list)  # message_parts rows of the parts sent now
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    run_at: datetime | None = None
    cost: float = 0.0
    probe: str | None = None  # the claim's owner when this message was its half-open channel's one probe

    @property
    def ok(self) -> bool:
        return self.kind == "sent"


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
        # Messages of the batches in flight: this worker's own reclaim leaves them alone (sql.OUTBOX_RECLAIM).
        self._holding: set[str] = set()
        # Outcomes of every batch in flight, committed together as they arrive. A group that fails because the
        # database is unreachable is not written item by item: each outcome retries on its own schedule.
        self._recorder: GroupCommit[_Record] = GroupCommit(
            self._write_records, alone=lambda exc: not outage.is_outage(exc)
        )

    # -- the loop -------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.rt.settings
        await self.rt.waker.listen(settings.async_database_url)
        log.info("worker %s started", self.id)
        try:
            while not stop.is_set():
                self.last_loop_at = time.monotonic()
                claimed_at = time.monotonic()
                try:
                    await self._maintain()
                    room = settings.worker_concurrency - self._inflight
                    claimed = await self._claim(min(room, settings.worker_batch_size)) if room > 0 else []
                except Exception as exc:
                    if outage.is_outage(exc):
                        log.warning(
                            "worker %s: database unavailable (%s); retrying", self.id, type(exc).__name__
                        )
                    else:
                        log.exception("worker %s: database error; retrying after the poll interval", self.id)
                    claimed = []
                if claimed:
                    self._spawn(claimed, claimed_at)
                    if (
                        len(claimed) == settings.worker_batch_size
                        and self._inflight < settings.worker_concurrency
                    ):
                        continue
                await self.rt.waker.wait(settings.poll_interval_seconds, stop)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            log.info("worker %s stopped", self.id)

    def _spawn(self, claimed: list[outbox.Claimed], claimed_at: float) -> None:
        self._inflight += len(claimed)
        task = asyncio.create_task(self._process(claimed, claimed_at))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._inflight -= len(claimed)
            self.rt.waker.wake()  # room for more

        task.add_done_callback(done)

    async def run_once(self) -> int:
        """Claim and fully process one batch (tests and benchmarks drive the worker with this)."""
        await self._maintain(force=True)
        claimed_at = time.monotonic()
        claimed = await self._claim(self.rt.settings.worker_batch_size)
        if claimed:
            await self._process(claimed, claimed_at)
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
            claimed = await outbox.claim(session, self.id, limit, utcnow(), self.rt.settings.lease_seconds)
        self.claimed_total += len(claimed)
        return claimed

    async def _process(self, claimed: list[outbox.Claimed], claimed_at: float) -> None:
        """Gate, send and record one batch. Each message's outcome is recorded as soon as it is known (see the
        module docstring); the batch's lease is extended while any of its messages is not yet recorded."""
        lease = _Lease(
            {c.id for c in claimed},
            claimed_at + self.rt.settings.lease_seconds,
            self.rt.settings.lease_seconds,
        )
        keeper = asyncio.create_task(self._keep_lease(lease))
        self._holding.update(lease.pending)
        try:
            channels = await self._channels_for(claimed)
            probes: dict[
                str, str
            ] = {}  # half-open channels whose one probe this batch holds -> the claim's owner
            try:
                async with self.rt.sessions.begin() as session:
                    gates = await self._gate(session, claimed, channels, probes)
            except Exception as exc:
                probes.clear()  # rolled back with the rest
                if outage.is_outage(exc):
                    log.warning("worker %s: database unavailable while gating; these messages wait", self.id)
                else:
                    log.exception("worker %s: gating failed; these messages wait a second", self.id)
                now = utcnow()
                gates = [
                    Outcome(
                        c, "unknown", now, kind="deferred", error="gate failed",
                        run_at=now + timedelta(seconds=1),
                    )
                    for c in claimed
                ]  # fmt: skip
            steps = []
            for item, gate in zip(claimed, gates, strict=True):
                owner = probes.get(item.channel_id or "")
                probe = owner if owner == f"{self.id}/{item.id}" else None
                if gate is not None:
                    gate.probe = probe  # a probe claimed but not used (a rate limit held it) is given back
                    steps.append(self._record(gate, lease))
                else:
                    steps.append(self._send_and_record(item, channels[item.id], lease, probe))
            await asyncio.gather(*steps)
        finally:
            self._holding.difference_update(c.id for c in claimed)
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _send_and_record(
        self, item: outbox.Claimed, channel: Channel | Exception, lease: _Lease, probe: str | None
    ) -> None:
        outcome = await self._send(item, channel)
        outcome.probe = probe
        if outcome.kind in ("sent", "error"):
            self.rt.metrics.observe_attempt(outcome.provider, outcome.kind, outcome.duration)
        await self._record(outcome, lease)

    async def _record(self, outcome: Outcome, lease: _Lease) -> None:
        """Commit ``outcome`` (with whatever else finishes at the same moment), retrying with backoff while the
        lease lasts. Given up, the message stays leased until the lease runs out and is then sent again."""
        record = _Record(outcome)
        wait = _RECORD_RETRY_FIRST
        try:
            while True:
                try:
                    await self._recorder.submit(record)
                except Exception as exc:
                    record.retried = True
                    left = lease.deadline - time.monotonic() - _LEASE_MARGIN * lease.seconds
                    if left <= 0:
                        log.error(  # noqa: TRY400 - the first failure of the batch was logged with its traceback
                            "worker %s: could not record the outcome of %s before its lease ran out (%s): "
                            "it will be sent again", self.id, outcome.claimed.id, type(exc).__name__,
                        )  # fmt: skip
                        return
                    lease.failed(self.id, exc)
                    await asyncio.sleep(min(left, wait * random.uniform(0.5, 1.0)))  # noqa: S311 - jitter
                    wait = min(wait * 2, _RECORD_RETRY_CAP)
                else:
                    return
        finally:
            lease.pending.discard(outcome.claimed.id)

    async def _write_records(self, records: list[_Record]) -> None:
        """One transaction for the outcomes that arrived together. A write that failed may have committed all the
        same (the connection dropped after COMMIT was sent): when retrying, only messages still leased to this
        worker are recorded, so nothing is recorded twice."""
        outcomes = [r.outcome for r in records]
        async with self.rt.sessions.begin() as session:
            if any(r.retried for r in records):
                ours = await self._still_leased(session, [o.claimed.id for o in outcomes])
                outcomes = [o for o in outcomes if o.claimed.id in ours]
            if outcomes:
                await self._complete(session, outcomes)

    async def _still_leased(self, session: AsyncSession, ids: list[str]) -> set[str]:
        rows = await session.execute(
            select(Message.id).where(
                Message.id.in_(ids), Message.lease_owner == self.id, Message.status == Status.SENDING
            )
        )
        return set(rows.scalars())

    async def _keep_lease(self, lease: _Lease) -> None:
        """Extend the lease of the batch's unrecorded messages every third of a lease, until they are recorded
        (the task is cancelled then); sooner again after a failure."""
        seconds = lease.seconds
        while True:
            await asyncio.sleep(seconds / 3)
            while lease.pending:
                started = time.monotonic()
                try:
                    async with self.rt.sessions.begin() as session:
                        await session.execute(
                            update(Message)
                            .where(
                                Message.id.in_(sorted(lease.pending)),
                                Message.lease_owner == self.id,
                                Message.status == Status.SENDING,
                            )
                            .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
                            .execution_options(synchronize_session=False)
                        )
                except Exception as exc:
                    lease.failed(self.id, exc)
                    await asyncio.sleep(min(1.0, seconds / 10))
                    continue
                lease.deadline = started + seconds
                break

    async def _channels_for(self, claimed: list[outbox.Claimed]) -> dict[str, Channel | Exception]:
        channels: dict[str, Channel | Exception] = {}
        for item in claimed:
            try:
                channels[item.id] = await self._channel_for(item)
            except Exception as exc:
                channels[item.id] = exc
        return channels

    async def _channel_for(self, claimed: outbox.Claimed) -> Channel:
        if claimed.channel_id is None:
            return self.rt.devinbox_channel(claimed.tenant_id, claimed.platform)
        return await self.rt.channel(claimed.channel_id)

    async def _gate(
        self,
        session: AsyncSession,
        claimed: list[outbox.Claimed],
        channels: dict[str, Channel | Exception],
        probes: dict[str, str],
    ) -> list[Outcome | None]:
        """Hold back what must not be sent now: open circuits (fall back or wait), half-open ones but for the one
        probe this batch may have claimed (``probes`` gets its claims), and rate limits (wait)."""
        now = utcnow()
        health = await circuit.load(session, {c.channel_id for c in claimed if c.channel_id}, now)
        gates: list[Outcome | None] = [None] * len(claimed)
        probing: set[str] = set()
        hold = timedelta(seconds=self.rt.settings.send_timeout_seconds) + circuit.PROBE_MARGIN
        wants: list[list[ratelimit.Limit]] = []
        asking: list[int] = []
        for index, item in enumerate(claimed):
            channel = channels[item.id]
            if isinstance(channel, Exception) or item.channel_id is None:
                continue
            view = health[item.channel_id]
            held = _held(item, channel, view, probing, now)
            if held is None and view.state == "half_open":
                # This batch's candidate probe: it goes only if no other worker (or batch) has the probe.
                owner = f"{self.id}/{item.id}"
                if await circuit.claim_probe(session, item.channel_id, owner, now, hold):
                    probes[item.channel_id] = owner
                else:
                    held = _probe_elsewhere(item, channel, now)
            if held is not None:
                gates[index] = held
                continue
            limits = self._limits(item, channel)
            if limits:
                wants.append(limits)
                asking.append(index)
        if wants:
            waits = await ratelimit.acquire(session, self.rt.dialect, wants, now)
            for index, wait in zip(asking, waits, strict=True):
                if wait > 0:
                    item = claimed[index]
                    gates[index] = Outcome(
                        item, "rate_limit", now, kind="deferred", error="rate limited",
                        run_at=now + timedelta(seconds=wait),
                    )  # fmt: skip
        return gates

    @staticmethod
    def _limits(item: outbox.Claimed, channel: Channel) -> list[ratelimit.Limit]:
        """The buckets one message must pass. A rate the channel's owner set (rather than the provider's
        published one) gets a bucket of at least one second's worth, so a high override is not throttled by a
        small published burst."""
        burst = max(channel.burst, 1.0)
        limits = []
        if channel.channel_rate:
            own = channel.config.rate_per_second
            capacity = max(burst, own) if own else burst
            limits.append(
                ratelimit.Limit.with_margin(f"ch:{item.channel_id}", channel.channel_rate, capacity)
            )
        if channel.recipient_rate:
            own = channel.config.recipient_rate_per_second
            burst = max(burst, own) if own else burst
            key = f"to:{item.channel_id}:{item.recipient_id}"
            limits.append(ratelimit.Limit.with_margin(key, channel.recipient_rate, burst))
        return limits

    async def _send(self, claimed: outbox.Claimed, channel: Channel | Exception) -> Outcome:
        """One delivery attempt; what it logs names the message, its tenant and its agent."""
        with logs.bound(message_id=claimed.id, tenant=claimed.tenant_id, agent=claimed.agent_id):
            return await self._attempt(claimed, channel)

    async def _attempt(self, claimed: outbox.Claimed, channel: Channel | Exception) -> Outcome:
        started_at = utcnow()
        clock = time.perf_counter()
        if isinstance(channel, Exception):
            reason = channel.reason if isinstance(channel, DeliveryError) else str(channel)
            return self._failed(claimed, "unknown", started_at, clock, reason, None, permanent=True)
        provider = channel.provider
        content, subject = _text_of(claimed)
        files: tuple[Attachment, ...] = ()
        if claimed.sealed_content is not None:
            # The real text of a redacted message (an OTP code) and the attachments exist only for this call.
            try:
                sealed = self.rt.credentials.open(claimed.sealed_content)
                content = str(sealed.get("content", content))
                files = attachments.from_sealed(sealed.get("attachments") or ())
            except (ConfigError, KeyError, ValueError):
                reason = "sealed content cannot be decrypted: was HERALD_SECRET_KEY changed?"
                return self._failed(claimed, provider, started_at, clock, reason, None, permanent=True)
        message = OutboundMessage(
            id=claimed.id,
            tenant_id=claimed.tenant_id,
            platform=claimed.platform,
            recipient_id=claimed.recipient_id,
            content=content,
            subject=subject,
            attempt=claimed.attempts,
            # Threading applies on the interface the conversation is on, not on a fallback elsewhere.
            reply_context=claimed.reply_context if claimed.route_step == 0 else None,
            actions=tuple(Action(a["value"], a["label"], a.get("style")) for a in claimed.actions or ()),
            attachments=files,
        )
        texts = channel.parts_of(content)
        if len(texts) == 1:
            return await self._deliver_whole(claimed, channel, message, started_at, clock)
        try:
            # Only a split message has a record: the parts earlier attempts on this route step delivered.
            earlier = await self._delivered_parts(claimed) if len(texts) > 1 else []
        except Exception:
            log.exception("worker %s: reading the delivered parts of %s failed", self.id, claimed.id)
            later = utcnow() + timedelta(seconds=1)
            return Outcome(claimed, provider, started_at, kind="deferred", error="parts unread", run_at=later)
        return await self._deliver(
            claimed, parts.Delivery(channel, message, texts, earlier), started_at, clock
        )

    async def _deliver_whole(
        self,
        claimed: outbox.Claimed,
        channel: Channel,
        message: OutboundMessage,
        started_at: datetime,
        clock: float,
    ) -> Outcome:
        """The common case, kept lean (it is the worker's hot path): one provider message, no part record."""
        try:
            async with asyncio.timeout(self.rt.settings.send_timeout_seconds):
                provider_id = await channel.send(message)
        except Exception as exc:
            error, retry_after, permanent = _classify(exc, channel.provider, claimed.id)
            return self._failed(
                claimed, channel.provider, started_at, clock, error, retry_after, permanent=permanent
            )
        outcome = Outcome(
            claimed, channel.provider, started_at, time.perf_counter() - clock, provider_message_id=provider_id,
            cost=channel.config.cost_per_message,
        )  # fmt: skip
        outcome.sent_now = provider_id
        return outcome

    async def _deliver(
        self, claimed: outbox.Claimed, delivery: parts.Delivery, started_at: datetime, clock: float
    ) -> Outcome:
        """Send the parts not yet delivered. The outcome carries the parts that went out even when a later one
        failed, so they are recorded with it and the retry (or this step's next attempt) skips them."""
        channel = delivery.channel
        try:
            async with asyncio.timeout(self.rt.settings.send_timeout_seconds):
                await delivery.run()
        except Exception as exc:
            error, retry_after, permanent = _classify(exc, channel.provider, claimed.id)
            outcome = self._failed(
                claimed, channel.provider, started_at, clock, error, retry_after, permanent=permanent
            )
        else:
            # Cost counts the parts delivered on this step: the record's and this attempt's.
            ids = delivery.ids
            outcome = Outcome(
                claimed, channel.provider, started_at, time.perf_counter() - clock,
                provider_message_id=",".join(ids), cost=channel.config.cost_per_message * len(ids),
            )  # fmt: skip
        outcome.sent_now = ",".join(delivery.sent_now) or None
        outcome.parts = parts.part_rows(
            delivery, tenant_id=claimed.tenant_id, channel_id=claimed.channel_id,
            route_step=claimed.route_step, attempt=claimed.attempts,
        )  # fmt: skip
        return outcome

    async def _delivered_parts(self, claimed: outbox.Claimed) -> list[str]:
        """Read with a session of its own: no transaction is held while the provider is called."""
        async with self.rt.sessions() as session:
            return await parts.delivered(session, claimed.id, claimed.route_step)

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
            claimed, provider, started_at, time.perf_counter() - clock, kind="error",
            error=error, retry_after=retry_after, permanent=permanent,
        )  # fmt: skip

    async def _complete(self, session: AsyncSession, outcomes: list[Outcome]) -> None:
        """Record outcomes in one transaction: status, attempt rows, parts, audit, events, circuits (and give
        back the half-open probes these messages held)."""
        now = utcnow()
        batch = _Batch(now)
        for outcome in outcomes:
            self._settle(batch, outcome)
        table = table_of(Message)
        # A finished message drops its sealed content: nothing readable outlives the send.
        await self._update(session, batch.sent, {
            "status": Status.SENT, "sent_at": bindparam("b_now"), "provider_message_id": bindparam("b_pid"),
            "last_error": None, "cost": bindparam("b_cost"), "sealed_content": None,
        })  # fmt: skip
        await self._update(
            session, batch.failed,
            {"status": Status.FAILED, "last_error": bindparam("b_error"), "sealed_content": None},
        )  # fmt: skip
        await self._update(session, batch.retry, {
            "status": Status.QUEUED, "run_at": bindparam("b_run_at"), "last_error": bindparam("b_error"),
        })  # fmt: skip
        await self._update(session, batch.deferred, {
            "status": Status.QUEUED, "run_at": bindparam("b_run_at"), "attempts": table.c.attempts - 1,
        })  # fmt: skip
        await self._update(session, batch.fallback, {
            "status": Status.QUEUED, "run_at": bindparam("b_now"), "last_error": bindparam("b_error"),
            "attempts": 0, "route_step": bindparam("b_step"), "platform": bindparam("b_platform"),
            "recipient_id": bindparam("b_recipient"), "channel_id": bindparam("b_channel"),
            "simulated": bindparam("b_simulated"),
        })  # fmt: skip
        # Core executemany (COPY for large groups on PostgreSQL), not the ORM's bulk insert: its per-row
        # parameter processing was the largest single cost of a worker draining the dev inbox.
        await insert_rows(session, table_of(Attempt), batch.attempts)
        if batch.parts:
            # With the outcome, in this transaction: the retry or fallback just decided sees these parts.
            await session.execute(parts.record_statement(self.rt.dialect), batch.parts)
        await insert_rows(session, table_of(AuditEntry), batch.audits)
        await insert_rows(session, table_of(Event), batch.events)
        probes = {o.claimed.channel_id: o.probe for o in outcomes if o.probe and o.claimed.channel_id}
        if batch.successes or batch.failures or probes:
            await circuit.record(session, batch.successes, batch.failures, now, probes)
        if batch.fallback:
            await self.rt.waker.wake_after_commit(session)
        if batch.deferred:
            # Wake when the first deferred message may go, instead of waiting for the next poll.
            soonest = min(row["b_run_at"] for row in batch.deferred)
            delay = min(max((soonest - now).total_seconds(), 0.0), self.rt.settings.poll_interval_seconds)
            asyncio.get_running_loop().call_later(delay, self.rt.waker.wake)

    def _settle(self, batch: _Batch, o: Outcome) -> None:
        """Decide what one outcome does to its message: sent, retry later, next route step, or failed."""
        c, now = o.claimed, batch.now
        if o.kind == "deferred":
            batch.deferred.append({"b_id": c.id, "b_now": now, "b_run_at": o.run_at})
            return
        batch.attempts.append(_attempt_row(o))
        batch.parts.extend(o.parts)
        if o.ok:
            batch.sent.append({"b_id": c.id, "b_pid": o.provider_message_id, "b_now": now, "b_cost": o.cost})
            batch.record(
                c, "message.sent", {"provider": o.provider, "provider_message_id": o.provider_message_id}
            )
            self.rt.metrics.count_message(Status.SENT, c.platform)
            if c.channel_id:
                batch.successes.add(c.channel_id)
            return
        if c.channel_id and o.kind == "error" and not o.permanent:
            count, _ = batch.failures.get(c.channel_id, (0, ""))
            batch.failures[c.channel_id] = (count + 1, o.error or "")
        final = o.kind == "skipped" or o.permanent or c.attempts >= c.max_attempts
        step = c.next_step() if final else None
        if step is not None:
            batch.fallback.append({
                "b_id": c.id, "b_now": now, "b_error": o.error, "b_step": c.route_step + 1,
                "b_platform": step["platform"], "b_recipient": step["recipient_id"],
                "b_channel": step["channel_id"], "b_simulated": bool(step["simulated"]),
            })  # fmt: skip
            batch.record(
                c, "message.fallback", {"from": c.platform, "to": step["platform"], "error": o.error}
            )
        elif final:
            batch.failed.append({"b_id": c.id, "b_error": o.error, "b_now": now})
            batch.record(
                c, "message.failed", {"provider": o.provider, "error": o.error, "attempts": c.attempts}
            )
            self.rt.metrics.count_message(Status.FAILED, c.platform)
        else:
            settings = self.rt.settings
            delay = backoff_seconds(
                c.attempts, settings.retry_base_seconds, settings.retry_max_seconds, o.retry_after
            )
            run_at = now + timedelta(seconds=delay)
            batch.retry.append({"b_id": c.id, "b_error": o.error, "b_now": now, "b_run_at": run_at})
            detail = {
                "provider": o.provider,
                "error": o.error,
                "attempts": c.attempts,
                "next_attempt_at": run_at.isoformat(),
            }
            batch.audits.append(
                audit_row(
                    c.tenant_id, WORKER_ACTOR, "message.retry_scheduled", "message", c.id, detail, at=now
                )
            )

    async def _update(
        self, session: AsyncSession, rows: list[dict[str, Any]], values: dict[str, Any]
    ) -> None:
        """Executemany; guarded by the lease so a worker that lost its lease cannot overwrite the new owner."""
        if not rows:
            return
        table = table_of(Message)
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
            holding = {"owner": self.id, "holding": sorted(self._holding)}
            reclaimed = (await session.execute(outbox.RECLAIM, {"now": now, **holding})).all()
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


async def run_worker(rt: Runtime, stop: asyncio.Event) -> None:
    """The outbox loop: one worker until ``stop``; then its heartbeat is withdrawn, so ``/health`` stops
    counting it at once rather than when the heartbeat ages out."""
    worker = Worker(rt)
    try:
        await worker.run(stop)
    finally:
        await worker.stop_heartbeat()


LOOPS = (Loop("outbox", "worker", runner=run_worker),)


@dataclass(slots=True)
class _Record:
    """One outcome waiting to be committed; ``retried`` once a write that held it failed."""

    outcome: Outcome
    retried: bool = False


@dataclass(slots=True)
class _Lease:
    """A batch's lease as the worker sees it: the messages not yet recorded, and when (monotonic clock) the
    lease runs out unless extended."""

    pending: set[str]
    deadline: float
    seconds: float
    warned: bool = False

    def failed(self, worker: str, exc: Exception) -> None:
        """Note a failed write (logged once per batch: an outage would otherwise log every message)."""
        if self.warned:
            return
        self.warned = True
        if outage.is_outage(exc):
            log.warning(
                "worker %s: database unavailable (%s); retrying the outcomes of %d messages while their lease lasts",
                worker, type(exc).__name__, len(self.pending),
            )  # fmt: skip
        else:
            log.error("worker %s: recording outcomes failed; retrying", worker, exc_info=exc)


@dataclass
class _Batch:
    """The rows the outcomes of one transaction turn into, written together by ``Worker._complete``."""

    now: datetime
    sent: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)
    fallback: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    successes: set[str] = field(default_factory=set)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)

    def record(self, c: outbox.Claimed, action: str, detail: dict[str, Any]) -> None:
        self.audits.append(audit_row(c.tenant_id, WORKER_ACTOR, action, "message", c.id, detail, at=self.now))
        self.events.append(event_row(c.tenant_id, action, c.id, detail, at=self.now))


def _text_of(claimed: outbox.Claimed) -> tuple[str, str | None]:
    """The body and subject the current route step sends: its own when the producer rendered one for that
    platform (a campaign's email template after SMS failed), else the message's."""
    step = claimed.route_plan[claimed.route_step] if claimed.route_step < len(claimed.route_plan) else {}
    own = step.get("content")
    if claimed.route_step > 0 and isinstance(own, str):
        return own, step.get("subject")
    return claimed.content, claimed.subject


def _classify(exc: BaseException, provider: str, message_id: str) -> tuple[str, float | None, bool]:
    """(error text, retry-after, permanent?) for what a channel raised."""
    if isinstance(exc, TimeoutError):
        return "timed out", None, False
    if isinstance(exc, RetryableDeliveryError):
        return exc.reason, exc.retry_after, False
    if isinstance(exc, PermanentDeliveryError | ConfigError):
        return str(exc), None, True
    if isinstance(exc, DeliveryError):
        return exc.reason, None, False
    log.error("channel %s raised unexpectedly for %s", provider, message_id, exc_info=exc)
    return f"internal error: {type(exc).__name__}", None, False


def _attempt_row(o: Outcome) -> dict[str, Any]:
    c = o.claimed
    outcome = {"sent": "sent", "skipped": "skipped"}.get(o.kind) or ("failed" if o.permanent else "retry")
    return {
        "id": new_id("att"), "tenant_id": c.tenant_id, "message_id": c.id, "channel_id": c.channel_id,
        "provider": o.provider, "number": c.attempts, "started_at": o.started_at,
        "duration_ms": round(o.duration * 1000, 3), "outcome": outcome,
        "provider_message_id": o.sent_now, "error": o.error, "retry_after": o.retry_after,
    }  # fmt: skip


def _held(
    item: outbox.Claimed, channel: Channel, view: circuit.CircuitView, probing: set[str], now: datetime
) -> Outcome | None:
    """Why ``item`` must not go out on ``channel`` now, if so: a disabled interface or an open circuit fall back to
    the next route step when there is one, else wait; a half-open circuit lets one probe through at a time: none
    while another worker holds it, else the batch's first message, if it wins the claim (see ``_gate``)."""
    reason = "interface disabled" if not channel.config.enabled else None
    if reason is None and view.state == "open":
        reason = "circuit open"
    if reason is not None:
        if item.next_step() is not None:
            return Outcome(item, channel.provider, now, kind="skipped", error=reason)
        if reason == "circuit open":
            later = view.reopens_at or now + circuit.COOLDOWN
        else:
            later = now + timedelta(seconds=30)
        return Outcome(item, channel.provider, now, kind="deferred", error=reason, run_at=later)
    if view.state == "half_open":
        assert item.channel_id is not None
        if view.probing or item.channel_id in probing:
            return _probe_elsewhere(item, channel, now)
        probing.add(item.channel_id)
    return None


def _probe_elsewhere(item: outbox.Claimed, channel: Channel, now: datetime) -> Outcome:
    """A half-open circuit whose one probe is another message's (this batch's or another worker's): wait a second
    for its outcome, no attempt counted."""
    later = now + timedelta(seconds=1)
    return Outcome(item, channel.provider, now, kind="deferred", error="circuit half-open", run_at=later)
