"""Herald campaigns benchmark: one campaign over 100,000 customers in a tenant's own PostgreSQL database.

The bench builds two scratch databases on the loopback PostgreSQL: Herald's own (``herald_camp_<pid>``,
migrated) and the tenant's (``tenant_camp_<pid>``: a ``customers`` table of ``--n`` rows, each with a phone or
an email, some with both), registers the second as a data source and an AUTONOMOUS agent, then ``--runs`` times:

1. **first run**: a new campaign (SMS then email, the library's ``spring_reminder`` template, dedupe on
   ``customer_id``) is run now; timed from the run's start to its last message committed ``queued`` (development
   mode routes both platforms to the dev inbox, so no provider is involved). Target: under 20 s.
2. **second run**: the same campaign again; every row is found in the dedupe ledger and nothing is created.
   Target: under 5 s.

Each run's counts are checked (every customer a message, then every customer deduped) and the messages are
counted in the database. Medians of the runs are printed and written to ``bench/results/campaigns-postgres.json``.
Only 127.0.0.1 is touched; both databases are dropped at the end.

    .venv/bin/python bench/campaigns.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import asyncpg
from _common import (
    RESULTS_DIR,
    SECRET,
    BenchError,
    check_loopback,
    describe_environment,
    pg_admin,
    prepare_results,
    with_database,
)

from herald.admin import datasources as sources
from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
from herald.core.config import load_settings
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.producers.campaigns import model, service
from herald.runtime import Runtime
from herald.storage.migrate import upgrade

AGENT = "bench-campaigns"
FIRST_TARGET, SECOND_TARGET = 20.0, 5.0


async def fill_tenant_db(url: str, n: int) -> None:
    """``n`` customers: every third has no phone (email only), every fifth with a phone no email (SMS only)."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(
            "CREATE TABLE customers (customer_id int PRIMARY KEY, first_name text, phone text, email text, "
            "timezone text)"
        )
        rows = [
            (i, f"Customer{i}", None if i % 3 == 0 else f"+1555{i:07d}",
             None if i % 5 == 0 and i % 3 else f"c{i}@example.com", "America/Chicago")
            for i in range(1, n + 1)
        ]  # fmt: skip
        await conn.copy_records_to_table("customers", records=rows)
    finally:
        await conn.close()


async def setup(rt: Runtime, tenant_url: str) -> tuple[Principal, str]:
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench")
        key = await create_api_key(session, tenant, name="bench")
    async with rt.sessions.begin() as session:
        principal = await principal_for_key(session, key)
        assert principal is not None
        await create_agent(session, principal, agent_id=AGENT, name=AGENT,
                           maturity_level=MaturityLevel.AUTONOMOUS, callback_url=None)  # fmt: skip
        source = await sources.create_data_source(rt, session, principal, name="dealer", url=tenant_url)
        return principal, source.id


async def new_campaign(rt: Runtime, principal: Principal, source_id: str, index: int) -> str:
    spec = model.CampaignSpec(
        name=f"bench {index}", agent_id=AGENT, data_source_id=source_id, schedule="every day at 9am",
        event_type="spring_reminder", timezone="America/Chicago", timezone_column="timezone",
        audience_query="SELECT customer_id, first_name, phone, email, timezone FROM customers",
        channels=[model.ChannelStep("sms", "phone"), model.ChannelStep("email", "email")],
        variables={"dealership_name": "Riverside Power", "dealership_phone": "(555) 010-2300",
                   "equipment_model": "mower", "booking_url": "https://dealer.example/book"},
        dedupe_key=["customer_id"],
    )  # fmt: skip
    checked = await service.check(rt, principal.tenant_id, spec)
    async with rt.sessions.begin() as session:
        return (await service.create(session, principal, checked)).id


async def timed_run(rt: Runtime, principal: Principal, campaign_id: str) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    run = await service.run_now(rt, principal, campaign_id)
    elapsed = time.perf_counter() - started
    if run.status != model.COMPLETED:
        raise BenchError(f"run {run.id} ended {run.status}: {run.error}")
    counts = {"audience": run.audience, "created": run.created, "deduped": run.deduped, "failed": run.failed}
    return elapsed, counts


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.postgres)
    herald_db, tenant_db = f"herald_camp_{os.getpid()}", f"tenant_camp_{os.getpid()}"
    for name in (herald_db, tenant_db):
        await pg_admin(args.postgres, f"DROP DATABASE IF EXISTS {name}")
        await pg_admin(args.postgres, f"CREATE DATABASE {name}")
    try:
        tenant_url = with_database(args.postgres, tenant_db)
        await fill_tenant_db(tenant_url, args.n)
        with tempfile.TemporaryDirectory() as data_dir:
            settings = load_settings(database_url=with_database(args.postgres, herald_db), env="development",
                                     secret_key=SECRET, data_dir=data_dir)  # fmt: skip
            rt = Runtime(settings)
            try:
                await upgrade(rt.engine)
                principal, source_id = await setup(rt, tenant_url)
                firsts, seconds = [], []
                for index in range(args.runs):
                    campaign_id = await new_campaign(rt, principal, source_id, index)
                    first, counts = await timed_run(rt, principal, campaign_id)
                    if counts["created"] != args.n or counts["audience"] != args.n:
                        raise BenchError(f"first run created {counts}, expected {args.n} messages")
                    second, again = await timed_run(rt, principal, campaign_id)
                    if again["created"] != 0 or again["deduped"] != args.n:
                        raise BenchError(f"second run was not entirely deduped: {again}")
                    print(f"run {index + 1}: first {first:.2f} s ({args.n / first:,.0f} rows/s), "
                          f"second {second:.2f} s (all {again['deduped']:,} deduped)")  # fmt: skip
                    firsts.append(first)
                    seconds.append(second)
                async with rt.engine.connect() as conn:
                    from sqlalchemy import text

                    stored = (
                        await conn.execute(text("SELECT count(*) FROM messages WHERE status = 'queued'"))
                    ).scalar()
            finally:
                await rt.close()
    finally:
        for name in (herald_db, tenant_db):
            await pg_admin(args.postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if stored != args.n * args.runs:
        raise BenchError(f"{stored} queued messages, expected {args.n * args.runs}")
    return {
        "bench": "campaigns", "backend": "postgresql", "customers": args.n, "runs": args.runs,
        "first_run_seconds": firsts, "second_run_seconds": seconds,
        "first_run_median": statistics.median(firsts), "second_run_median": statistics.median(seconds),
        "targets": {"first_run": FIRST_TARGET, "second_run": SECOND_TARGET}, "environment": describe_environment(),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--n", type=int, default=100_000, help="customers in the tenant's database")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        result = asyncio.run(bench(args))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    first, second = result["first_run_median"], result["second_run_median"]
    print(
        f"median first run (start to all {args.n:,} messages queued): {first:.2f} s (target < {FIRST_TARGET:g} s)"
    )
    print(f"median second run (entirely deduped): {second:.2f} s (target < {SECOND_TARGET:g} s)")
    prepare_results()
    (RESULTS_DIR / "campaigns-postgres.json").write_text(json.dumps(result, indent=2))
    return 0 if first < FIRST_TARGET and second < SECOND_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
