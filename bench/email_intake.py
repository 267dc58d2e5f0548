"""Email intake benchmark: 1,000 emails waiting in a real IMAP mailbox, and the time until Herald has stored and
routed every one of them.

Everything is real and on loopback: dovecot configured by ``tests/support/dovecot.py`` (``apt-get install
dovecot-imapd``), Herald's database on the loopback PostgreSQL (its own database ``herald_bench_email_<pid>_<run>``,
dropped after each run). Per run: a fresh account with ``--emails`` messages APPENDed (not timed), an email
interface with a mailbox on it, then the clock starts and this process runs the worker's ``imap`` loop (the
mailbox follower) and ``inbound`` loop (routing); the clock stops when every message is an inbound message and
none is still pending or processing. The figure is the median of ``--runs`` runs.

The follower fetches up to ``FETCH_BATCH`` bodies per ``UID FETCH`` and hands each batch to intake together, so the
stores group-commit; one round trip per message would cost about a millisecond each on loopback alone.

    PYTHONPATH=src:. .venv/bin/python bench/email_intake.py
    PYTHONPATH=src:. .venv/bin/python bench/email_intake.py --emails 1000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    SECRET,
    check_loopback,
    describe_environment,
    pg_admin,
    prepare_results,
    with_database,
)
from sqlalchemy import func, select
from tests.support import dovecot as harness

from herald.admin.tenants import get_or_create_tenant
from herald.core.background import run_loop
from herald.core.config import load_settings
from herald.core.ids import new_id
from herald.core.principal import Principal
from herald.producers.conversations import processor
from herald.producers.email import imap
from herald.producers.email.mailbox import MailboxSettings, put_mailbox
from herald.runtime import Runtime
from herald.storage.engine import create_engine
from herald.storage.migrate import upgrade
from herald.storage.models import Channel, InboundMessage


def _email(n: int) -> bytes:
    return harness.email(n, sender=f"Customer {n % 50} <customer{n % 50}@example.com>",
                         subject=f"Service request {n}", body=f"My mower number {n} will not start. " * 5)  # fmt: skip


async def one_run(args: argparse.Namespace, server: harness.Dovecot, run: int) -> dict[str, Any]:
    name = f"herald_bench_email_{os.getpid()}_{run}"
    await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {name}")
    await pg_admin(args.postgres_url, f"CREATE DATABASE {name}")
    url = with_database(args.postgres_url, name)
    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    await upgrade(engine)
    await engine.dispose()
    account = server.add_user(f"bench{os.getpid()}r{run}")
    started = time.monotonic()
    for start in range(0, args.emails, 100):
        server.deliver(account, *[_email(n) for n in range(start, min(start + 100, args.emails))])
    delivered_in = time.monotonic() - started
    work = Path(tempfile.mkdtemp(prefix="herald-bench-email-"))
    rt = Runtime(load_settings(database_url=url, env="development", secret_key=SECRET, data_dir=work,
                               poll_interval_seconds=0.05))  # fmt: skip
    stop = asyncio.Event()
    try:
        async with rt.sessions.begin() as session:
            tenant = await get_or_create_tenant(session, "bench")
            channel = Channel(id=new_id("chn"), tenant_id=tenant.id, platform="email", provider="smtp",
                              name="sales", credentials=rt.credentials.seal({"host": "smtp.example.com"}))  # fmt: skip
            session.add(channel)
            await session.flush()
            principal = Principal(tenant_id=tenant.id, key_id="bench", is_admin=True)
            await put_mailbox(rt, session, principal, channel.id, MailboxSettings(
                host=account.host, port=account.port, security="none", username=account.user,
                password=account.password, poll_interval_seconds=60))  # fmt: skip
        clock = time.monotonic()
        loops = [asyncio.create_task(imap.follow_mailboxes(rt, stop)),
                 *(asyncio.create_task(run_loop(loop, rt, stop)) for loop in processor.LOOPS)]  # fmt: skip
        stored_at = None
        while True:
            async with rt.sessions() as session:
                stored = (
                    await session.execute(select(func.count()).select_from(InboundMessage))
                ).scalar_one()
                open_ = (await session.execute(select(func.count()).select_from(InboundMessage).where(
                    InboundMessage.status.in_(("pending", "processing"))))).scalar_one()  # fmt: skip
            if stored >= args.emails and stored_at is None:
                stored_at = time.monotonic() - clock
            if stored >= args.emails and open_ == 0:
                break
            if time.monotonic() - clock > args.timeout:
                raise SystemExit(f"timed out: {stored} stored, {open_} open after {args.timeout} s")
            await asyncio.sleep(0.02)
        routed_at = time.monotonic() - clock
        stop.set()
        await asyncio.gather(*loops)
    finally:
        stop.set()
        await rt.close()
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)
    return {"run": run, "emails": args.emails, "appended_in_s": round(delivered_in, 2),
            "stored_s": round(stored_at or routed_at, 3), "stored_and_routed_s": round(routed_at, 3)}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.postgres_url)
    server = harness.start()
    try:
        runs = [await one_run(args, server, run) for run in range(args.runs)]
    finally:
        server.stop()
    median = statistics.median(r["stored_and_routed_s"] for r in runs)
    return {"bench": "email_intake", "emails": args.emails, "runs": runs,
            "median_stored_and_routed_s": median, "median_per_second": round(args.emails / median, 1),
            "fetch_batch": imap.FETCH_BATCH, "environment": describe_environment()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--postgres-url", default=os.environ.get(
        "HERALD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    args = parser.parse_args(argv)
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    result = asyncio.run(main_async(args))
    for r in result["runs"]:
        print(f"run {r['run']}: {r['emails']} emails stored in {r['stored_s']:.2f} s, stored and routed in "
              f"{r['stored_and_routed_s']:.2f} s (APPEND took {r['appended_in_s']:.2f} s, not timed)")  # fmt: skip
    print(f"median: {result['median_stored_and_routed_s']:.2f} s for {args.emails} emails "
          f"({result['median_per_second']:.0f} emails/s), FETCH batch {result['fetch_batch']}")  # fmt: skip
    out = prepare_results() / "email_intake.json"
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
