"""The mailbox follower against a real dovecot, on SQLite and PostgreSQL: new mail becomes inbound messages and
conversations; IDLE wakes it at once; a crash in the middle of a batch neither loses nor repeats a message; two
followers never take one message; a new UIDVALIDITY does not resend what was received; flag and move; a failing
login is recorded in last_error without the secret."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from herald.producers.email import imap, intake
from herald.runtime import Runtime
from herald.storage.models import Conversation, InboundMessage, Mailbox, MailboxMessage
from tests.conftest import make_settings
from tests.integration.test_dashboard import sign_in
from tests.integration.test_mailboxes import email_interface, settings
from tests.support.dovecot import Account, Dovecot, email


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lease_seconds": 3.0}  # renewed every second; a dead follower's lease runs out in 3 s


@pytest.fixture(autouse=True)
def quick_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap, "CLAIM_EVERY", 0.2)
    monkeypatch.setattr(imap, "BACKOFF_FIRST", 0.5)


@pytest.fixture
def account(dovecot: Dovecot, request: pytest.FixtureRequest) -> Account:
    return dovecot.add_user(f"f{abs(hash(request.node.nodeid)) % 10**9}")


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def inbound(rt: Runtime) -> list[InboundMessage]:
    async with rt.sessions() as session:
        return list((await session.execute(select(InboundMessage).order_by(InboundMessage.id))).scalars())


async def mailbox(rt: Runtime) -> Mailbox:
    async with rt.sessions() as session:
        return (await session.execute(select(Mailbox))).scalar_one()


@contextlib.asynccontextmanager
async def following(rt: Runtime) -> AsyncIterator[asyncio.Task[None]]:
    """The ``imap`` loop running, stopped cleanly at the end."""
    stop = asyncio.Event()
    task = asyncio.create_task(imap.follow_mailboxes(rt, stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def setup(client: httpx.AsyncClient, auth: dict[str, str], account: Account, **extra: Any) -> str:
    channel_id = await email_interface(client, auth)
    response = await client.put(
        f"/api/v1/interfaces/{channel_id}/mailbox", json=settings(account, **extra), headers=auth
    )
    assert response.status_code == 201, response.text
    return channel_id


async def test_new_mail_becomes_inbound_messages_and_idle_wakes_at_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    dovecot.deliver(account, email(0, subject="Already read"), flags="(\\Seen)")
    uids = dovecot.deliver(
        account, email(1, subject="Mower price?"), email(2, sender="Sam <sam@example.com>")
    )
    channel_id = await setup(client, auth, account, poll_interval_seconds=3600)
    async with following(rt):
        await until(lambda: _count(rt, 2))
        got = await inbound(rt)
        assert {m.sender_id for m in got} == {"pat@example.com", "sam@example.com"}
        assert any(
            (m.details or {}).get("subject") == "Mower price?" and "message number 1" in m.body for m in got
        )
        assert all(m.channel_id == channel_id for m in got)
        async with rt.sessions() as session:
            assert (await session.execute(select(func.count()).select_from(Conversation))).scalar_one() == 2
        await until(lambda: _flagged(dovecot, account, uids))
        assert dovecot.flags(account)[1] == {"\\Seen"}  # left alone: it was read before Herald came

        box = await mailbox(rt)
        assert box.mode == "idle"
        assert box.last_uid == 3
        assert box.uidvalidity == dovecot.uidvalidity(account)
        # IDLE: a delivery while idle (the poll interval is an hour) is stored within about a second.
        await asyncio.sleep(1.5)
        started = time.monotonic()
        await asyncio.to_thread(dovecot.deliver, account, email(3, subject="Arrived while idle"))
        await until(lambda: _count(rt, 3), 5)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, elapsed
        listed = (await client.get("/api/v1/interfaces", headers=auth)).json()["items"]
        (item,) = [i for i in listed if i["id"] == channel_id]
        assert item["mailbox"]["state"]["messages_today"] == 3
        assert item["mailbox"]["state"]["following"]
        assert item["mailbox"]["state"]["last_poll_at"] is not None


async def test_poll_mode_without_idle(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    await setup(client, auth, account, idle=False, poll_interval_seconds=10)
    async with rt.sessions.begin() as session:  # the API's floor is 10 s; the follower takes any interval
        await session.execute(update(Mailbox).values(poll_interval_seconds=1))
    async with following(rt):
        await until(lambda: _mode(rt, "poll"))
        dovecot.deliver(account, email(1))
        await until(lambda: _count(rt, 1), 15)


async def test_a_crash_in_the_middle_of_a_batch_neither_loses_nor_repeats(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    dovecot.deliver(account, *[email(i) for i in range(30)])
    await setup(client, auth, account)
    monkeypatch.setattr(imap, "FETCH_BATCH", 8)
    calls: Counter[str] = Counter()
    real = intake.receive
    stuck = asyncio.Event()

    async def receive(rt: Runtime, channel: Any, raw: bytes, *, source: str) -> str | None:
        calls[source] += 1
        if sum(calls.values()) > 12:  # the process "dies" in the middle of its second batch
            stuck.set()
            await asyncio.Event().wait()
        return await real(rt, channel, raw, source=source)

    monkeypatch.setattr(intake, "receive", receive)

    async def no_release(*args: Any, **kwargs: Any) -> None:  # a killed process releases nothing
        return None

    monkeypatch.setattr(imap, "release", no_release)
    stop = asyncio.Event()
    first = asyncio.create_task(imap.follow_mailboxes(rt, stop))
    await asyncio.wait_for(stuck.wait(), 15)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert 8 <= len(await inbound(rt)) <= 12

    monkeypatch.setattr(intake, "receive", real)
    async with following(rt):  # a new process: takes over once the dead one's lease runs out
        await until(lambda: _count(rt, 30), 30)
        await until(lambda: _all_done(rt, 30), 15)
    got = await inbound(rt)
    assert len(got) == 30
    assert len({m.provider_message_id for m in got}) == 30
    assert all("$Herald" in flags for flags in dovecot.flags(account).values())


@pytest.mark.postgres_only
async def test_two_processes_never_take_one_message(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot,
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    await setup(client, auth, account)
    taken: Counter[str] = Counter()
    real = intake.receive

    async def receive(rt: Runtime, channel: Any, raw: bytes, *, source: str) -> str | None:
        taken[source.split(":", 1)[1]] += 1
        await asyncio.sleep(0.01)
        return await real(rt, channel, raw, source=source)

    monkeypatch.setattr(intake, "receive", receive)
    other = Runtime(make_settings(database_url, tmp_path / "b", lease_seconds=3.0))
    try:
        # Two processes' loops: one holds the lease, the other waits for it.
        async with following(rt), following(other):
            dovecot.deliver(account, *[email(i) for i in range(20)])
            await until(lambda: _count(rt, 20), 20)
        # Overlapping leases (a process paused past its lease while another took over): two followers catch up
        # on the same mailbox at once; the recorded row decides who takes each message.
        dovecot.deliver(account, *[email(i) for i in range(100, 140)])
        box = await mailbox(rt)
        async with rt.sessions.begin() as session:
            (await session.get(Mailbox, box.id)).lease_owner = "both"  # type: ignore[union-attr]
        followers = [imap.Follower(r, box.id, "both") for r in (rt, other)]

        async def once(follower: imap.Follower) -> None:
            row = await follower.renew()
            channel = await follower._channel(row)
            from herald.producers.email.client import open_session
            from herald.producers.email.mailbox import server_of

            session = await open_session(server_of(follower.rt, row), follower.rt.outbound, folder=row.folder)
            try:
                await follower.catch_up(session, row, channel)
            finally:
                await session.close()

        await asyncio.gather(*(once(f) for f in followers))
        await until(lambda: _count(rt, 60), 10)
    finally:
        await other.close()
    assert max(taken.values()) == 1
    assert len(taken) == 60


async def test_a_hand_over_slower_than_the_lease_keeps_its_messages(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A loaded machine or a slow agent behind intake: the first follower takes 2.5 leases to hand its messages
    over. Their holds are renewed meanwhile, so a second follower catching up then (overlapping leases) takes none
    of them, and neither does the first follower's own next pass."""
    await setup(client, auth, account)
    dovecot.deliver(account, *[email(i) for i in range(5)])
    taken: Counter[str] = Counter()
    real = intake.receive
    slow = asyncio.Event()

    async def receive(rt: Runtime, channel: Any, raw: bytes, *, source: str) -> str | None:
        taken[source.split(":", 1)[1]] += 1
        if not slow.is_set():
            await asyncio.sleep(imap.lease_seconds(rt) * 2.5)
        return await real(rt, channel, raw, source=source)

    monkeypatch.setattr(intake, "receive", receive)
    box = await mailbox(rt)
    async with rt.sessions.begin() as session:
        (await session.get(Mailbox, box.id)).lease_owner = "both"  # type: ignore[union-attr]
    first, second = imap.Follower(rt, box.id, "both"), imap.Follower(rt, box.id, "both")

    async def once(follower: imap.Follower, after: float) -> None:
        await asyncio.sleep(after)
        row = await follower.renew()
        channel = await follower._channel(row)
        from herald.producers.email.client import open_session
        from herald.producers.email.mailbox import server_of

        session = await open_session(server_of(follower.rt, row), follower.rt.outbound, folder=row.folder)
        try:
            await follower.catch_up(session, row, channel)
        finally:
            await session.close()

    started = asyncio.create_task(once(first, 0))
    await until(lambda: _taken(taken, 5), 10)
    slow.set()  # the second follower's hand-overs, if any, are quick
    await once(second, imap.lease_seconds(rt) * 1.5)
    await started
    await once(first, 0)
    assert sorted(taken.values()) == [1] * 5
    assert len(await inbound(rt)) == 5


async def _taken(taken: Counter[str], n: int) -> bool:
    return len(taken) >= n


async def test_a_new_uidvalidity_does_not_resend_what_was_received(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    a, b = email(1, message_id="<a@x>"), email(2, message_id="<b@x>")
    dovecot.deliver(account, a, b, folder="Leads")
    await setup(client, auth, account, folder="Leads")
    async with following(rt):
        await until(lambda: _count(rt, 2))
        await until(lambda: _all_done(rt, 2))
    before = (await mailbox(rt)).uidvalidity
    dovecot.recreate(
        account, "Leads"
    )  # the folder is rebuilt: new UIDVALIDITY, the same mail again, and one more
    dovecot.deliver(account, a, b, email(3, message_id="<c@x>"), folder="Leads")
    async with following(rt):
        await until(lambda: _count(rt, 3))
        await until(lambda: _uidvalidity_changed(rt, before))
    got = await inbound(rt)
    assert sorted(m.provider_message_id for m in got) == ["<a@x>", "<b@x>", "<c@x>"]
    async with rt.sessions() as session:
        statuses = Counter((await session.execute(select(MailboxMessage.status))).scalars())
    assert statuses["skipped"] == 2


async def test_move_after_processing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    dovecot.deliver(account, email(0), folder="Done")
    dovecot.deliver(account, email(1), email(2))
    await setup(client, auth, account, after_processing="move", move_to="Done")
    async with following(rt):
        await until(lambda: _count(rt, 2))
        await until(lambda: _all_done(rt, 2))
    assert dovecot.flags(account) == {}
    assert len(dovecot.flags(account, "Done")) == 3


async def test_a_failing_login_is_recorded_and_retried(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    channel_id = await setup(client, auth, account)
    dovecot.add_user(account.user, "changed-Password-9")  # the password changes on the server
    async with following(rt):
        await until(lambda: _has_error(rt))
        shown = await client.get(f"/api/v1/interfaces/{channel_id}/mailbox", headers=auth)
        assert "authentication failed" in shown.json()["state"]["last_error"].lower()
        assert account.password not in shown.text
        assert "changed-Password-9" not in shown.text
        dovecot.add_user(account.user, account.password)  # fixed: the next try succeeds and clears the error
        dovecot.deliver(account, email(1))
        await until(lambda: _count(rt, 1), 20)
        await until(lambda: _no_error(rt), 5)


# -- checks ---------------------------------------------------------------------------------------------------


async def _count(rt: Runtime, n: int) -> bool:
    got = len(await inbound(rt))
    assert got <= n, f"{got} inbound messages, expected {n}"
    return got == n


async def _all_done(rt: Runtime, n: int) -> bool:
    async with rt.sessions() as session:
        query = select(func.count()).select_from(MailboxMessage).where(MailboxMessage.status == "done")
        return (await session.execute(query)).scalar_one() == n


async def _flagged(dovecot: Dovecot, account: Account, uids: list[int]) -> bool:
    flags = await asyncio.to_thread(dovecot.flags, account)
    return all({"\\Seen", "$Herald"} <= flags[uid] for uid in uids)


async def _mode(rt: Runtime, mode: str) -> bool:
    return (await mailbox(rt)).mode == mode


async def _has_error(rt: Runtime) -> bool:
    return (await mailbox(rt)).last_error is not None


async def _no_error(rt: Runtime) -> bool:
    return (await mailbox(rt)).last_error is None


async def _uidvalidity_changed(rt: Runtime, before: int | None) -> bool:
    return (await mailbox(rt)).uidvalidity != before


async def test_the_dashboard_shows_the_mailbox_state(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    channel_id = await setup(client, auth, account)
    dovecot.add_user(account.user, "changed-Password-9")
    async with following(rt):
        await until(lambda: _has_error(rt))
    await sign_in(client, auth)
    page = (await client.get("/interfaces")).text
    assert f"{account.user}@{account.host}/INBOX" in page
    assert "authentication failed" in page.lower()
    assert "changed-Password-9" not in page
    assert account.password not in page
    assert channel_id in page


# -- end to end: a real mailbox through the real intake --------------------------------------------------------

AUTO_REPLY = (
    b"From: Pat Buyer <pat@example.com>\r\nTo: sales@dealer.example\r\nSubject: Out of office\r\n"
    b"Message-ID: <ooo-1@example.com>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nI am away until Monday.\r\n"
)
BOUNCE = (
    b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: sales@dealer.example\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.example.net>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
    b"Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--B--\r\n"
)
HTML_ONLY = (
    "From: =?utf-8?q?Zo=C3=AB_M=C3=BCller?= <zoe@example.com>\r\nTo: sales@dealer.example\r\n"
    "Subject: =?utf-8?q?Ersatzteil_f=C3=BCr_M=C3=A4her?=\r\nMessage-ID: <html-1@example.com>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: text/html; charset="utf-8"\r\n\r\n<html><body><p>Hallo,</p><p>brauche ein <b>Messer</b> '
    "für den Mäher.</p></body></html>\r\n"
).encode()


async def test_auto_replies_and_bounces_are_taken_but_never_routed_and_html_mail_is_readable(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, account: Account, dovecot: Dovecot
) -> None:
    uids = dovecot.deliver(account, AUTO_REPLY, BOUNCE, HTML_ONLY)
    await setup(client, auth, account, poll_interval_seconds=3600)
    async with following(rt):
        await until(lambda: _all_done(rt, 3))  # all three are taken (and flagged) ...
        await until(lambda: _flagged(dovecot, account, uids))
        (stored,) = await inbound(rt)  # ... but only the person's email reaches a conversation
    assert (stored.sender_id, stored.sender_name) == ("zoe@example.com", "Zoë Müller")
    assert (stored.details or {}).get("subject") == "Ersatzteil für Mäher"
    assert "brauche ein Messer für den Mäher." in stored.body
    assert "<b>" not in stored.body
    audit = (await client.get("/api/v1/audit?action=email.suppressed", headers=auth)).json()["items"]
    assert len(audit) == 2
