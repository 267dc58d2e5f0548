"""Pattern detection benchmark: every detector of :mod:`herald.learning.patterns` over 1,000,000 messages on
PostgreSQL.

Its own database (``herald_bench_patterns_<pid>``, dropped at the end) is migrated, then filled in SQL with
``INSERT ... SELECT generate_series`` (not timed): one tenant, 50 agents (10 of them INTERN), 8 channels,
``--messages`` messages over the last 30 days in business hours to 5,000 recipients (mostly unique texts, some
templated ones, a few regular manual sends, conversation replies, single-step and fallback routes), one
``message.sent`` event and one attempt per message (one channel failing often), delivery and read receipts for a
fifth of them with a faster hour per recipient, 200 monitors with 20,000 alerts (a few flapping), 5,000
conversations with 50,000 inbound messages, and 20,000 approvals. Then ``detect()`` runs over everything,
``--runs`` times; the figure is the median.

    PYTHONPATH=src:. .venv/bin/python bench/patterns.py
    PYTHONPATH=src:. .venv/bin/python bench/patterns.py --messages 1000000 --runs 5
    PYTHONPATH=src:. .venv/bin/python bench/patterns.py --keep herald_bench_patterns_dev --runs 1

``--keep NAME`` fills the database ``NAME`` only when it is empty and leaves it in place afterwards, so a second
run measures the same rows at once (its clock is the one the rows were made with; new migrations are applied).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import check_loopback, describe_environment, pg_admin, prepare_results, with_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from herald.learning import model, patterns
from herald.storage import fingerprint, responses
from herald.storage.engine import create_engine
from herald.storage.migrate import upgrade

TENANT = "ten_bench"
# Herald writes each message's content fingerprint when it accepts it; generated rows get the same in SQL.
BODY_FINGERPRINT = fingerprint.PG_SQL.format(column="body")

# Each statement gets :now (the bench's clock) and :n (the number of messages). Ids follow new_id(): the prefix,
# 12 hex digits of the creation millisecond, 16 more; so the id ranges detectors use hold.
SETUP = [
    "INSERT INTO tenants (id, name, delivery_policy, otp_policy, created_at) "
    "VALUES ('ten_bench', 'bench', '{}', '{}', :now)",
    """INSERT INTO agents (tenant_id, id, name, maturity_level, kind, created_at, updated_at)
       SELECT 'ten_bench', 'agent_' || a, 'agent ' || a, CASE WHEN a < 10 THEN 'INTERN' ELSE 'AUTONOMOUS' END,
              'external', :now, :now FROM generate_series(0, 49) a""",
    """INSERT INTO channels (id, tenant_id, platform, provider, name, credentials, is_default, cost_per_message,
                            enabled, created_at)
       SELECT 'chn_' || c, 'ten_bench', (ARRAY['slack','sms','email','telegram'])[c % 4 + 1], 'fake',
              'channel ' || c, '\\x00'::bytea, false, 0, true, :now FROM generate_series(0, 7) c""",
    # Messages: g is the row number; t its creation time, in business hours over the last 30 days.
    """INSERT INTO messages (id, tenant_id, agent_id, platform, recipient_id, channel_id, simulated, conversation_id,
                            route_plan, route_step, cost, content, content_fingerprint, status, priority, run_at,
                            attempts, max_attempts, governance_metadata, created_at, updated_at, sent_at,
                            ai_prompt_tokens, ai_completion_tokens, ai_cost)
       SELECT 'msg_' || lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || lpad(to_hex(g), 16, '0'),
              'ten_bench', 'agent_' || (g % 50), (ARRAY['slack','sms','email','telegram'])[g % 4 + 1],
              'r' || (g % 5000), 'chn_' || (g % 8), false,
              CASE WHEN g % 20 = 0 THEN 'cnv_' || (g % 5000) END,
              CASE WHEN g % 3 = 0 THEN '[{"platform": "sms"}, {"platform": "email"}]'
                   ELSE '[{"platform": "sms"}]' END::json,
              0, 0, body, """
    + BODY_FINGERPRINT
    + """,
              CASE WHEN g % 5 = 0 THEN 'read' WHEN g % 5 = 1 THEN 'delivered' ELSE 'sent' END, 5, t, 1, 5,
              CASE WHEN g % 25 = 0 THEN '{"campaign_id": "cmp_1"}' ELSE '{}' END::json,
              t, t, t + interval '1 second', 0, 0, 0
       FROM (SELECT g, date_trunc('day', CAST(:now AS timestamptz)) - ((g / 7) % 30 + 1) * interval '1 day'
                        + (8 + (g * 3) % 11) * interval '1 hour' + (g % 3600) * interval '1 second' AS t,
                    CASE WHEN g % 10 = 0 THEN 'Your order ' || g || ' has shipped'
                         WHEN g % 10 = 1 THEN 'Reminder: invoice ' || g || ' is due on 2026-0' || (g % 9 + 1)
                                              || '-1' || (g % 9)
                         ELSE 'Note ' || md5(g::text) END AS body
             FROM generate_series(1, :n) g) s""",
    # Regular manual sends: 40 agent/recipient pairs, the same report at about 09:00 on 12 days.
    """INSERT INTO messages (id, tenant_id, agent_id, platform, recipient_id, simulated, route_plan, route_step, cost,
                            content, content_fingerprint, status, priority, run_at, attempts, max_attempts,
                            governance_metadata, created_at, updated_at, sent_at, ai_prompt_tokens,
                            ai_completion_tokens, ai_cost)
       SELECT 'msg_' || lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || lpad(to_hex(p * 100 + d), 16, 'f'),
              'ten_bench', 'agent_' || (10 + p), 'slack', 'team' || p, false, '[{"platform": "slack"}]'::json, 0, 0,
              body, """
    + BODY_FINGERPRINT
    + """, 'sent', 5, t, 1, 5, '{}'::json, t, t, t, 0, 0, 0
       FROM (SELECT p, d, date_trunc('day', CAST(:now AS timestamptz)) - d * interval '1 day' + interval '9 hours'
                        + ((p + d) % 7) * interval '1 minute' AS t, 'Daily numbers: ' || (p * d) || ' signups' AS body
             FROM generate_series(0, 39) p, generate_series(1, 12) d) s""",
    "INSERT INTO events (id, tenant_id, type, subject_id, data, created_at) "
    "SELECT 'evt_' || substr(id, 5), tenant_id, 'message.sent', id, '{}', sent_at FROM messages",
    # Receipts: a fifth delivered and read; each recipient reads fastest what is sent at its own hour.
    """INSERT INTO events (id, tenant_id, type, subject_id, data, created_at)
       SELECT 'evt_' || substr(id, 5, 12) || 'd' || substr(id, 18), tenant_id, 'message.delivered', id, '{}',
              sent_at + interval '2 seconds'
       FROM messages WHERE status IN ('read', 'delivered')""",
    """INSERT INTO events (id, tenant_id, type, subject_id, data, created_at)
       SELECT 'evt_' || substr(id, 5, 12) || 'e' || substr(id, 18), tenant_id, 'message.read', id, '{}',
              sent_at + CASE WHEN extract(hour FROM sent_at AT TIME ZONE 'UTC')
                                  = 8 + (substr(recipient_id, 2)::int % 11)
                             THEN interval '60 seconds' ELSE interval '1800 seconds' END
       FROM messages WHERE status = 'read'""",
    # Attempts: one per message; channel 5 fails 60 % of single-step sends, the others 2 %.
    """INSERT INTO attempts (id, tenant_id, message_id, channel_id, provider, number, started_at, duration_ms,
                            outcome)
       SELECT 'att_' || substr(id, 5), tenant_id, id, channel_id, 'fake', 1, sent_at, 12.5,
              CASE WHEN channel_id = 'chn_5' AND abs(hashtext(id)) % 10 < 6 THEN 'failed'
                   WHEN abs(hashtext(id)) % 50 = 0 THEN 'failed' ELSE 'sent' END
       FROM messages WHERE channel_id IS NOT NULL""",
    """INSERT INTO monitors (id, tenant_id, agent_id, name, condition, platforms, check_interval_seconds,
                            for_seconds, throttle_seconds, priority, no_data_policy, error_policy, mute_windows,
                            status, state, state_since, firing_notified, trigger_count, created_at, updated_at)
       SELECT 'mon_' || m, 'ten_bench', 'agent_' || (m % 50), 'monitor ' || m, '{}', '[]', 60, 0, 900, 2, 'keep',
              'keep', '[]', 'active', 'ok', :now, false, 0, :now, :now FROM generate_series(0, 199) m""",
    # Alerts: 50 cycles per monitor, spread over the month; monitors 0-9 flap within minutes, the others
    # stay firing for hours.
    """INSERT INTO monitor_alerts (id, tenant_id, monitor_id, kind, platforms_sent, message_ids, status,
                                  triggered_at)
       SELECT 'alr_' || lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || lpad(to_hex(m * 1000 + c * 2 + k), 16, '0'),
              'ten_bench', 'mon_' || m, CASE k WHEN 0 THEN 'firing' ELSE 'resolved' END, '[]', '[]', 'sent', t
       FROM (SELECT m, c, k, CAST(:now AS timestamptz) - interval '29 days' + m * interval '1 hour'
                        + c * CASE WHEN m < 10 THEN interval '20 minutes' ELSE interval '13 hours' END
                        + k * CASE WHEN m < 10 THEN interval '4 minutes' ELSE interval '5 hours' END AS t
             FROM generate_series(0, 199) m, generate_series(0, 49) c, generate_series(0, 1) k) s""",
    """INSERT INTO conversations (id, tenant_id, channel_id, platform, external_id, agent_id, session_started_at,
                                 last_activity_at, created_at)
       SELECT 'cnv_' || c, 'ten_bench', 'chn_' || (c % 8), 'slack', 'r' || c, 'agent_' || (c % 50), :now, :now, :now
       FROM generate_series(0, 4999) c""",
    """INSERT INTO inbound_messages (id, tenant_id, channel_id, conversation_id, provider_message_id, sender_id, body,
                                    attachments, reply_context, sent_at, received_at, status, attempts,
                                    next_attempt_at)
       SELECT 'inb_' || i, 'ten_bench', 'chn_' || (i % 5000 % 8), 'cnv_' || (i % 5000), 'p' || i, 'r' || (i % 5000),
              'hello', '[]', '{}', t, t, 'routed', 1, t
       FROM (SELECT i, CAST(:now AS timestamptz) - (i % 28 + 1) * interval '1 day'
                        + (i % 5000) * interval '1 second' AS t
             FROM generate_series(0, 49999) i) s""",
    """INSERT INTO approvals (id, tenant_id, message_id, decision, approver, created_at)
       SELECT 'apr_' || substr(id, 5), tenant_id, id,
              CASE WHEN agent_id = 'agent_3' OR abs(hashtext(id)) % 40 <> 0 THEN 'approved' ELSE 'rejected' END,
              'dana', sent_at
       FROM messages WHERE agent_id IN ('agent_0', 'agent_1', 'agent_2', 'agent_3', 'agent_4')
                       AND substr(recipient_id, 2)::int % 10 = 0 LIMIT 20000""",
]


async def fill(engine: AsyncEngine, now: datetime, messages: int) -> dict[str, int]:
    async with engine.begin() as conn:
        for statement in SETUP:
            await conn.execute(text(statement), {"now": now, "n": messages})
        # Herald writes each message's answer times as its receipts and replies arrive; generated rows get
        # them from the generated receipts and replies, as migration 0028 fills older rows.
        for statement in responses.backfill_statements("postgresql"):
            await conn.execute(text(statement))
    return await _counts(engine)


async def settle(engine: AsyncEngine) -> None:
    """What autovacuum would have done by the time anyone asks: dead rows left by the fill's updates (or by a
    migration's backfill of a kept database) removed, statistics current. Quick when there is nothing to do."""
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    counts = {}
    async with engine.connect() as conn:
        for table in ("messages", "events", "attempts", "monitor_alerts", "inbound_messages", "approvals"):
            counts[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    return counts


async def _exists(admin_url: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _filled_at(engine: AsyncEngine) -> datetime | None:
    """The clock a kept database was filled with (the bench tenant's creation time), or None when empty."""
    async with engine.connect() as conn:
        at = (
            await conn.execute(text("SELECT created_at FROM tenants WHERE id = :t"), {"t": TENANT})
        ).scalar()
    return None if at is None else at.astimezone(UTC)


async def time_once(
    engine: AsyncEngine, now: datetime, settings: patterns.PatternSettings
) -> tuple[float, dict[str, float], Counter[str]]:
    """The whole detect() once (in its lanes), then each kind alone (to see where the time goes)."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    started = time.perf_counter()
    found = await patterns.detect(sessions, TENANT, now=now, settings=settings)
    total = time.perf_counter() - started
    per_kind = {}
    for kind in model.KINDS:
        started = time.perf_counter()
        await patterns.detect(sessions, TENANT, now=now, kinds=[kind], settings=settings)
        per_kind[kind] = round(time.perf_counter() - started, 3)
    return total, per_kind, Counter(p.kind for p in found)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    check_loopback(args.postgres_url)
    name = args.keep or f"herald_bench_patterns_{os.getpid()}"
    if not args.keep:
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {name}")
    if not await _exists(args.postgres_url, name):
        await pg_admin(args.postgres_url, f"CREATE DATABASE {name}")
    engine = create_engine(
        with_database(args.postgres_url, name).replace("postgresql://", "postgresql+asyncpg://")
    )
    try:
        await upgrade(engine)
        kept = await _filled_at(engine)
        if kept is not None:
            now = kept
            counts = await _counts(engine)
            print(f"reusing {name} filled for {now.isoformat()}: {counts}")
        else:
            now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            started = time.monotonic()
            counts = await fill(engine, now, args.messages)
            print(f"filled in {time.monotonic() - started:.1f} s (not timed): {counts}")
        await settle(engine)
        settings = patterns.PatternSettings(lanes=args.lanes)
        runs = []
        for run in range(args.runs):
            total, per_kind, found = await time_once(engine, now, settings)
            runs.append(
                {"run": run, "seconds": round(total, 3), "per_kind_seconds": per_kind, "found": dict(found)}
            )
            print(f"run {run}: {total:.2f} s; per kind {per_kind}; found {dict(found)}")
    finally:
        await engine.dispose()
        if not args.keep:
            await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    median = statistics.median(r["seconds"] for r in runs)
    return {"bench": "patterns", "messages": args.messages, "lanes": args.lanes, "rows": counts, "runs": runs, "median_s": median,
            "environment": describe_environment()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lanes", type=int, default=patterns.DEFAULT_SETTINGS.lanes,
                        help="concurrent detector sessions (1: one after the other)")  # fmt: skip
    parser.add_argument("--keep", metavar="DATABASE", help="fill this database once and keep it (reuse runs)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "HERALD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    args = parser.parse_args(argv)
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    result = asyncio.run(main_async(args))
    print(f"median: {result['median_s']:.2f} s to compute every pattern over {args.messages} messages "
          f"(median of {args.runs})")  # fmt: skip
    out = prepare_results() / "patterns.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
