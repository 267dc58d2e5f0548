"""The mailbox follower: takes new mail from each email interface's IMAP mailbox and hands it to
:func:`herald.producers.email.intake.receive`.

Role: worker. Taking mail in is inbound traffic like a provider's webhook, which the worker role already routes
(:mod:`herald.producers.conversations.processor`); a scheduler decides *when* something happens, and nothing here
is decided, only followed. A deployment that scales workers out also spreads mailboxes over them.

One process follows a mailbox at a time: the ``imap`` loop leases free mailbox rows (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the same conditional ``UPDATE`` inside SQLite's single writer), and each followed mailbox renews its
lease every third of ``HERALD_LEASE_SECONDS``; a process that dies stops renewing, and another takes over once
the lease runs out.

No message missed, none taken twice, even across crashes:

1. Position is (UIDVALIDITY, last UID). New mail is ``UID SEARCH UID last+1:*``.
2. Each new UID is *recorded* first: a ``mailbox_messages`` row keyed (mailbox, UIDVALIDITY, UID), inserted with
   ``ON CONFLICT DO NOTHING`` in the transaction that moves ``last_uid`` on. Only the process whose insert wrote
   the row takes the message, so two processes never take one message even if their leases overlapped.
3. The bodies are fetched many UIDs per ``UID FETCH ... BODY.PEEK[]`` (PEEK: \\Seen stays off until processed),
   handed to intake, then the rows are marked ``received`` and the messages flagged (\\Seen and ``$Herald``) or
   moved on the server, then ``done``.
4. A crash after 2 leaves ``pending`` rows, retried when their hold runs out (intake is idempotent on
   Message-ID, so one handed over just before the crash is not stored twice); a crash after 3's first step
   leaves ``received`` rows, flagged or moved again on the next pass.

First contact takes the unread (UNSEEN) messages already in the folder and leaves read ones alone. When
UIDVALIDITY changes (the folder was rebuilt), old UIDs mean nothing: the unread messages are taken again except
those whose Message-ID was already received from this mailbox.

With IDLE offered by the server (CAPABILITY) and allowed by the mailbox, the follower idles and wakes on EXISTS;
each IDLE is ended and re-issued at every lease renewal, well within the 29 minutes servers allow. Without IDLE it
polls at the mailbox's interval. Failures (server away, bad password) are recorded in ``last_error`` and retried
with a doubling backoff; the loop never dies of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aioimaplib
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from herald.core.background import Loop
from herald.core.errors import HeraldError
from herald.producers.email import intake
from herald.producers.email.client import FETCH_BATCH, ImapError, Session, open_session
from herald.producers.email.mailbox import server_of
from herald.storage.claims import Stamp, claim
from herald.storage.models import Channel, Mailbox, MailboxMessage
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

CLAIM_EVERY = 5.0  # seconds between looks for mailboxes nobody follows
MAX_FOLLOWED = 100  # mailboxes one process follows at most
BACKOFF_FIRST = 5.0  # after a failure; doubling up to BACKOFF_MAX
BACKOFF_MAX = 300.0
INSERT_CHUNK = 500  # rows per INSERT: well within both backends' parameter limits
MAX_ERROR = 300


class LeaseLost(HeraldError):
    """The mailbox's lease is no longer this follower's (taken over, or the mailbox was deleted)."""


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


async def follow_mailboxes(rt: Runtime, stop: asyncio.Event) -> None:
    """The ``imap`` loop: lease free mailboxes and follow each in its own task until ``stop``."""
    owner = _owner()
    followers: dict[str, asyncio.Task[None]] = {}
    log.info("imap loop started")
    try:
        while not stop.is_set():
            for mailbox_id in [m for m, task in followers.items() if task.done()]:
                followers.pop(mailbox_id)
            room = MAX_FOLLOWED - len(followers)
            try:
                taken = await claim_free(rt, owner, room) if room > 0 else []
            except Exception:
                log.exception("imap: claiming mailboxes failed; trying again shortly")
                taken = []
            for mailbox_id in taken:
                followers[mailbox_id] = asyncio.create_task(Follower(rt, mailbox_id, owner).run())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CLAIM_EVERY)
    finally:
        for task in followers.values():
            task.cancel()
        await asyncio.gather(*followers.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await release(rt, owner)
        log.info("imap loop stopped")


LOOPS = (Loop(name="imap", role="worker", runner=follow_mailboxes),)


def lease_seconds(rt: Runtime) -> float:
    return rt.settings.lease_seconds


async def claim_free(rt: Runtime, owner: str, limit: int) -> list[str]:
    """Lease up to ``limit`` mailboxes whose lease is free or ran out; their ids."""
    now = utcnow()
    due = (
        select(Mailbox.id)
        .where(or_(Mailbox.lease_until.is_(None), Mailbox.lease_until < now))
        .order_by(Mailbox.id)
        .limit(limit)
    )
    async with rt.sessions.begin() as session:
        return await claim(
            session,
            due,
            lease=Stamp(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds(rt))),
        )


async def release(rt: Runtime, owner: str, mailbox_id: str | None = None) -> None:
    """Give up this process's leases (on a clean stop), so another process takes over at once."""
    query = update(Mailbox).where(Mailbox.lease_owner == owner)
    if mailbox_id is not None:
        query = query.where(Mailbox.id == mailbox_id)
    async with rt.sessions.begin() as session:
        await session.execute(query.values(lease_owner=None, lease_until=None))


class Follower:
    """Follows one leased mailbox until its lease is lost, the mailbox is deleted, or the task is cancelled."""

    def __init__(self, rt: Runtime, mailbox_id: str, owner: str) -> None:
        self.rt = rt
        self.mailbox_id = mailbox_id
        self.owner = owner
        self.failures = 0
        self.renew_every = max(lease_seconds(rt) / 3, 0.2)

    async def run(self) -> None:
        try:
            while True:
                row = await self.renew()
                try:
                    await self.follow(row)
                    self.failures = 0
                except LeaseLost:
                    raise
                except (ImapError, OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                    await self.failed(_short(exc))
                except Exception as exc:
                    log.exception("imap: following mailbox %s failed", self.mailbox_id)
                    await self.failed(_short(exc))
        except LeaseLost:
            log.info("imap: mailbox %s is no longer followed here", self.mailbox_id)
        except asyncio.CancelledError:
            raise

    # -- lease and state -------------------------------------------------------------------------------------

    async def renew(self) -> Mailbox:
        """Extend the lease; the mailbox row as it is now. Raises LeaseLost when it is no longer ours."""
        until = utcnow() + timedelta(seconds=lease_seconds(self.rt))
        async with self.rt.sessions.begin() as session:
            done = await session.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id, Mailbox.lease_owner == self.owner)
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(self.mailbox_id)
            row = await session.get(Mailbox, self.mailbox_id)
            assert row is not None
            session.expunge(row)
            return row

    async def _set(self, **values: Any) -> None:
        async with self.rt.sessions.begin() as session:
            done = await session.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id, Mailbox.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(self.mailbox_id)

    async def failed(self, reason: str) -> None:
        """Record the error; wait the backoff (renewing the lease) before trying again."""
        self.failures += 1
        log.warning("imap: mailbox %s: %s (failure %d)", self.mailbox_id, reason, self.failures)
        await self._set(last_error=reason, last_error_at=utcnow(), failures=Mailbox.failures + 1)
        wait = min(BACKOFF_FIRST * 2 ** (self.failures - 1), BACKOFF_MAX)
        await self.hold(wait)

    async def hold(self, seconds: float) -> None:
        """Wait ``seconds``, renewing the lease meanwhile."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(left, self.renew_every))
            await self.renew()

    # -- following -------------------------------------------------------------------------------------------

    async def follow(self, row: Mailbox) -> None:
        """Connect and follow until the settings change (then return, to reconnect with the new ones)."""
        channel = await self._channel(row)
        session = await open_session(server_of(self.rt, row), self.rt.outbound, folder=row.folder)
        try:
            mode = "idle" if row.idle and session.can_idle else "poll"
            await self._set(mode=mode, last_error=None, failures=0)
            self.failures = 0
            while True:
                if channel.enabled:
                    await self.catch_up(session, row, channel)
                await self._set(last_poll_at=utcnow())
                if mode == "idle":
                    await session.idle(self.renew_every)
                else:
                    await self._poll_wait(session, row)
                current = await self.renew()
                if current.updated_at != row.updated_at:
                    return  # new settings: reconnect with them
                channel = await self._channel(current)
        finally:
            await session.close()

    async def _poll_wait(self, session: Session, row: Mailbox) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + row.poll_interval_seconds
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(left, self.renew_every))
            if end - loop.time() > 0:
                await self.renew()
        await session.noop()  # lets the server report what arrived meanwhile

    async def _channel(self, row: Mailbox) -> Channel:
        async with self.rt.sessions() as session:
            channel = await session.get(Channel, row.channel_id)
            if channel is None:
                raise LeaseLost(self.mailbox_id)
            session.expunge(channel)
            return channel

    async def catch_up(self, session: Session, row: Mailbox, channel: Channel) -> int:
        """Take everything new (and retry what is due); returns how many messages were handed to intake."""
        validity = session.uidvalidity
        fresh: list[int] = []
        if row.uidvalidity != validity:
            fresh = await self._reposition(session, row)
        else:
            uids = [u for u in await session.search("UID", f"{row.last_uid + 1}:*") if u > row.last_uid]
            if uids:
                fresh = await self._record(validity, uids, last_uid=max(uids))
                row.last_uid = max(uids)
        due = sorted(set(fresh) | set(await self._take_due(validity)))
        handed = await self._process(session, channel, row, validity, due)
        await self._finish(session, row, validity)
        return handed

    async def _reposition(self, session: Session, row: Mailbox) -> list[int]:
        """First contact, or a new UIDVALIDITY: take the unread messages not received before."""
        validity = session.uidvalidity
        everything = await session.search("ALL")
        top = max([session.uidnext - 1, *everything]) if everything or session.uidnext else 0
        unseen = await session.search("UNSEEN")
        skipped: list[int] = []
        if row.uidvalidity is not None:  # a change: what was received under the old one stays received
            async with self.rt.sessions.begin() as db:
                await db.execute(
                    update(MailboxMessage)
                    .where(MailboxMessage.mailbox_id == row.id, MailboxMessage.uidvalidity != validity,
                           MailboxMessage.status == "pending")
                    .values(status="stale")
                )  # fmt: skip
            ids = await session.fetch_message_ids(unseen)
            known = await self._received_ids(row.id, [m for m in ids.values() if m])
            skipped = [uid for uid in unseen if ids.get(uid) in known]
            unseen = [uid for uid in unseen if uid not in set(skipped)]
        mine = await self._record(validity, unseen, last_uid=top, skipped=skipped, uidvalidity=validity)
        row.uidvalidity, row.last_uid = validity, top
        return mine

    async def _received_ids(self, mailbox_id: str, message_ids: list[str]) -> set[str]:
        found: set[str] = set()
        async with self.rt.sessions() as db:
            for start in range(0, len(message_ids), INSERT_CHUNK):
                chunk = message_ids[start : start + INSERT_CHUNK]
                query = select(MailboxMessage.message_id).where(
                    MailboxMessage.mailbox_id == mailbox_id, MailboxMessage.message_id.in_(chunk),
                    MailboxMessage.status.in_(("received", "done")),
                )  # fmt: skip
                found.update(m for m in (await db.execute(query)).scalars() if m)
        return found

    async def _record(
        self,
        validity: int,
        uids: Sequence[int],
        *,
        last_uid: int,
        skipped: Sequence[int] = (),
        uidvalidity: int | None = None,
    ) -> list[int]:
        """Record ``uids`` (pending, held by this follower for a lease) and move the position on, in one
        transaction, only while the lease is ours. Returns the pending UIDs this call recorded: rows another
        process recorded first stay theirs."""
        now = utcnow()
        hold_until = now + timedelta(seconds=lease_seconds(self.rt))
        rows = [
            {"mailbox_id": self.mailbox_id, "uidvalidity": validity, "uid": uid, "tenant_id": "",
             "status": status, "attempts": 1 if status == "pending" else 0, "next_attempt_at": hold_until if status == "pending" else now,
             "created_at": now}
            for status, group in (("pending", uids), ("skipped", skipped)) for uid in group
        ]  # fmt: skip
        position: dict[str, Any] = {"last_uid": last_uid}
        if uidvalidity is not None:
            position["uidvalidity"] = uidvalidity
        insert_ = pg_insert if self.rt.dialect == "postgresql" else sqlite_insert
        async with self.rt.sessions.begin() as db:
            moved = await db.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id, Mailbox.lease_owner == self.owner)
                .values(**position)
                .returning(Mailbox.tenant_id)
            )
            tenant_id = moved.scalar_one_or_none()
            if tenant_id is None:
                raise LeaseLost(self.mailbox_id)
            for row in rows:
                row["tenant_id"] = tenant_id
            mine: list[int] = []
            for start in range(0, len(rows), INSERT_CHUNK):
                written = await db.execute(
                    insert_(MailboxMessage)
                    .values(rows[start : start + INSERT_CHUNK])
                    .on_conflict_do_nothing()
                    .returning(MailboxMessage.uid, MailboxMessage.status)
                )
                mine += [uid for uid, status in written.all() if status == "pending"]
            return mine

    async def _take_due(self, validity: int) -> list[int]:
        """Pending rows of this UIDVALIDITY whose hold ran out (a crash, a failed hand-over): held again for a
        lease, so no other process takes them meanwhile; their UIDs."""
        now = utcnow()
        async with self.rt.sessions.begin() as db:
            retried = await db.execute(
                update(MailboxMessage)
                .where(MailboxMessage.mailbox_id == self.mailbox_id, MailboxMessage.uidvalidity == validity,
                       MailboxMessage.status == "pending", MailboxMessage.next_attempt_at <= now)
                .values(attempts=MailboxMessage.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=lease_seconds(self.rt)))
                .returning(MailboxMessage.uid)
            )  # fmt: skip
            return sorted(retried.scalars())

    async def _process(
        self, session: Session, channel: Channel, row: Mailbox, validity: int, uids: list[int]
    ) -> int:
        async with self._keeping(validity, uids):
            return await self._hand_over(session, channel, row, validity, uids)

    @contextlib.asynccontextmanager
    async def _keeping(self, validity: int, uids: list[int]) -> AsyncIterator[None]:
        """While ``uids`` are handed over, renew their holds and the lease every third of a lease.

        A hand-over slower than a lease (a loaded machine, a slow agent behind intake) must not let the holds run
        out: another follower, or this one's next pass, would then take the same messages again."""
        if not uids:
            yield
            return
        task = asyncio.create_task(self._keep_holds(validity, uids))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_holds(self, validity: int, uids: list[int]) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self._extend_holds(validity, uids)
                await self.renew()
            except LeaseLost:
                pass  # the holds are still ours; the follow loop notices the lost lease after this batch
            except Exception:
                log.warning("imap: renewing the holds of mailbox %s failed", self.mailbox_id, exc_info=True)

    async def _extend_holds(self, validity: int, uids: list[int]) -> None:
        until = utcnow() + timedelta(seconds=lease_seconds(self.rt))
        async with self.rt.sessions.begin() as db:
            for start in range(0, len(uids), INSERT_CHUNK):
                await db.execute(
                    update(MailboxMessage)
                    .where(MailboxMessage.mailbox_id == self.mailbox_id, MailboxMessage.uidvalidity == validity,
                           MailboxMessage.uid.in_(uids[start : start + INSERT_CHUNK]),
                           MailboxMessage.status == "pending")
                    .values(next_attempt_at=until)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip

    async def _hand_over(
        self, session: Session, channel: Channel, row: Mailbox, validity: int, uids: list[int]
    ) -> int:
        handed = 0
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            bodies = await session.fetch_bodies(chunk)
            present = [uid for uid in chunk if uid in bodies]
            outcomes = await asyncio.gather(
                *(
                    intake.receive(self.rt, channel, bodies[uid], source=f"{row.id}:{validity}:{uid}")
                    for uid in present
                ),
                return_exceptions=True,
            )
            received: list[dict[str, Any]] = []
            failed: list[tuple[int, str]] = []
            for uid, outcome in zip(present, outcomes, strict=True):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, BaseException):
                    failed.append((uid, _short(outcome)))
                    continue
                received.append({"uid": uid, "inbound_id": outcome, "message_id": _message_id(bodies[uid])})
            gone = [uid for uid in chunk if uid not in bodies]
            await self._mark(validity, received, failed, gone)
            handed += len(received)
        return handed

    async def _mark(
        self, validity: int, received: list[dict[str, Any]], failed: list[tuple[int, str]], gone: list[int]
    ) -> None:
        now = utcnow()
        key = (MailboxMessage.mailbox_id == self.mailbox_id, MailboxMessage.uidvalidity == validity)
        async with self.rt.sessions.begin() as db:
            for item in received:
                await db.execute(
                    update(MailboxMessage)
                    .where(*key, MailboxMessage.uid == item["uid"])
                    .values(status="received", inbound_id=item["inbound_id"], message_id=item["message_id"],
                            processed_at=now, error=None)
                )  # fmt: skip
            for uid, reason in failed:
                row = await db.get(MailboxMessage, (self.mailbox_id, validity, uid))
                attempts = row.attempts if row is not None else 1
                delay = min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), 3600.0)
                await db.execute(
                    update(MailboxMessage)
                    .where(*key, MailboxMessage.uid == uid)
                    .values(error=reason, next_attempt_at=now + timedelta(seconds=delay))
                )
            if gone:  # expunged by someone else before it could be fetched: nothing to take
                await db.execute(
                    update(MailboxMessage)
                    .where(*key, MailboxMessage.uid.in_(gone))
                    .values(status="done", error="no longer on the server", processed_at=now)
                )

    async def _finish(self, session: Session, row: Mailbox, validity: int) -> None:
        """Flag or move what was received, then mark it done."""
        async with self.rt.sessions() as db:
            query = select(MailboxMessage.uid).where(
                MailboxMessage.mailbox_id == row.id, MailboxMessage.uidvalidity == validity,
                MailboxMessage.status == "received",
            )  # fmt: skip
            uids = sorted((await db.execute(query)).scalars())
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            if row.after_processing == "move" and row.move_to:
                await session.move(chunk, row.move_to)
            else:
                await session.mark(chunk)
            async with self.rt.sessions.begin() as db:
                await db.execute(
                    update(MailboxMessage)
                    .where(MailboxMessage.mailbox_id == row.id, MailboxMessage.uidvalidity == validity,
                           MailboxMessage.uid.in_(chunk), MailboxMessage.status == "received")
                    .values(status="done")
                )  # fmt: skip


_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>|[^\r\n]+?)[ \t]*\r?$")


def _message_id(raw: bytes) -> str | None:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode(errors="replace")[:500] if match else None


def _short(exc: BaseException) -> str:
    text = exc.reason if isinstance(exc, ImapError) else (str(exc) or type(exc).__name__)
    return text.replace("\r", " ").replace("\n", " ")[:MAX_ERROR]
