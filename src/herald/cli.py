"""The ``herald`` command: serve, worker, migrate, keys, send, demo."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click

from herald.core.config import Settings, load_settings
from herald.core.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"  # where `herald serve` (and `make run`) listen by default


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        click.echo(f"herald: {exc}", err=True)
        sys.exit(2)


def _logging(settings: Settings) -> None:
    """JSON lines in production, readable key-value lines in development, on stderr (herald.core.logs)."""
    from herald.core import logs

    logs.configure(json=not settings.is_development, level=settings.log_level)


@click.group()
def main() -> None:
    """Herald: governed proactive messaging for AI agents."""


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    settings = _settings()
    _logging(settings)

    async def run() -> None:
        from herald.storage.engine import create_engine
        from herald.storage.migrate import upgrade

        engine = create_engine(settings.async_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """API, worker and scheduler in one process (the embedded default)."""
    settings = _settings()
    _logging(settings)
    _run_service(settings, _serve(settings, host, port, run_worker=True))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """The API alone; run workers with `herald worker`."""
    settings = _settings()
    _logging(settings)
    _run_service(settings, _serve(settings, host, port, run_worker=False))


async def _serve(settings: Settings, host: str, port: int, *, run_worker: bool) -> None:
    import uvicorn

    from herald.admin.bootstrap import dev_key
    from herald.runtime import Runtime
    from herald.storage.migrate import upgrade
    from herald.web.api.app import create_app

    rt = Runtime(settings)
    await upgrade(rt.engine)
    if settings.is_development:
        key = await dev_key(rt)
        _announce(host, port, key)
    app = create_app(settings, runtime=rt, run_worker=run_worker)
    _freeze_startup_objects()
    # uvicorn keeps the logging set up by _logging (log_config=None); Herald's own access line replaces its own.
    config = uvicorn.Config(
        app, host=host, port=port, log_level=settings.log_level.lower(), log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    try:
        await server.serve()
    finally:
        await rt.close()


def _announce(host: str, port: int, key: str | None) -> None:
    base = f"http://{host}:{port}"
    click.echo("")
    if key is None:
        click.echo("Development tenant exists; make a key with: herald keys create --tenant dev")
        key = "<key>"
    else:
        click.echo(f"Development API key: {key}")
    click.echo("Try it (agent_123 is SUPERVISED; agent_intern's messages wait for approval):")
    click.echo(
        f"  curl -s {base}/api/v1/messaging/proactive/send -H 'Authorization: Bearer {key}' "
        '-H \'Content-Type: application/json\' -d \'{"agent_id":"agent_123","platform":"slack",'
        '"recipient_id":"C12345","content":"Hello! I have important updates.","send_now":true}\''
    )
    click.echo(f"  curl -s '{base}/api/v1/devinbox?platform=slack' -H 'Authorization: Bearer {key}'")
    click.echo(f"Dashboard: {base}/ (sign in with the key above)")
    if base != DEFAULT_URL:
        click.echo(f"For herald send and the SDK examples: export HERALD_URL={base}")
    click.echo("")


def _run_until_signalled(command: str) -> None:
    """Migrate, then run the loops of ``command``'s roles (worker or scheduler) until SIGINT or SIGTERM."""
    settings = _settings()
    _logging(settings)

    async def run() -> None:
        from herald import app as loops
        from herald.runtime import Runtime
        from herald.storage.migrate import upgrade

        rt = Runtime(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await upgrade(rt.engine)
            _freeze_startup_objects()
            await loops.run(rt, stop, loops.COMMANDS[command])
        finally:
            await rt.close()

    _run_service(settings, run())


YOUNG_COLLECTION_OBJECTS = 10_000


def _freeze_startup_objects() -> None:
    """Move everything made while starting (modules, the ORM's mappers, the app's routes and models: hundreds
    of thousands of objects that live as long as the process) out of the cyclic garbage collector's sight.
    Otherwise each full collection walks all of them again, and a busy worker or API starts one every few
    thousand allocations.

    The youngest generation is then collected every ``YOUNG_COLLECTION_OBJECTS`` allocations instead of 700: a
    service's objects live for one request or one message, and a bulk request of 10,000 messages ran 270 young
    collections, 25 middle and two full ones (0.1 s of its 0.85 s); with 10,000, 17 young, one middle and no
    full one: half the collector's time, and about a tenth off the request."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, middle, old)


def _run_service(settings: Settings, service: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived service on the configured event loop (``HERALD_EVENT_LOOP``). uvloop cuts the cost
    of each socket read and callback, which is most of what an API process and a delivering worker do; the
    short commands (migrate, keys, send) keep asyncio's default."""
    with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
        runner.run(service)


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when chosen (or ``auto`` and importable); None: asyncio's default."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise click.ClickException("HERALD_EVENT_LOOP=uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


@main.command()
def worker() -> None:
    """A worker alone (deliveries and inbound routing): run several against one PostgreSQL to scale out."""
    _run_until_signalled("worker")


@main.command()
def scheduler() -> None:
    """Schedules, monitors, trigger reactions, event deliveries and retention: any number may share one
    PostgreSQL."""
    _run_until_signalled("scheduler")


@main.command()
def purge() -> None:
    """Run the retention job once: expired OTP verifications, old OTP send records, old finished messages."""
    settings = _settings()
    _logging(settings)

    async def run() -> dict[str, int]:
        from dataclasses import asdict

        from herald.admin.retention import purge as purge_once
        from herald.runtime import Runtime
        from herald.storage.migrate import upgrade

        rt = Runtime(settings)
        try:
            await upgrade(rt.engine)
            return asdict(await purge_once(rt))
        finally:
            await rt.close()

    for name, count in asyncio.run(run()).items():
        click.echo(f"{name}: {count}")


@main.command("fake-providers")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
def fake_providers(host: str, port: int) -> None:
    """Serve fake versions of every provider API (point a channel's base_url here), and a fake
    OpenAI-compatible chat-completions API at /v1 (point an LLM agent's base_url at http://HOST:PORT/v1)."""
    import uvicorn

    from herald.fakes import create_fake_app

    click.echo(f"fake providers on http://{host}:{port} (control API under /_fake, docs at /_fake/docs)")
    click.echo(f"fake OpenAI-compatible chat completions at http://{host}:{port}/v1 (script via /_fake/llm)")
    uvicorn.run(create_fake_app(), host=host, port=port, log_level="warning")


@main.group()
def keys() -> None:
    """Manage tenant API keys."""


@keys.command("create")
@click.option("--tenant", "tenant_name", required=True, help="tenant name; created if it does not exist")
@click.option("--name", default="", help="a label for the key")
@click.option(
    "--admin/--no-admin", default=True, show_default=True,
    help="admin keys may register agents and change maturity levels; others send, read and approve",
)  # fmt: skip
@click.option(
    "--agent", "agent_id", default=None, help="bind the key to this agent (it then speaks only as it)"
)
def keys_create(tenant_name: str, name: str, admin: bool, agent_id: str | None) -> None:
    """Create an API key; the key is printed alone on the last line, once."""
    settings = _settings()

    async def run() -> dict[str, Any]:
        from herald.admin.tenants import create_api_key, get_or_create_tenant
        from herald.runtime import Runtime
        from herald.storage.migrate import upgrade

        rt = Runtime(settings)
        try:
            await upgrade(rt.engine)
            async with rt.sessions.begin() as session:
                tenant = await get_or_create_tenant(session, tenant_name)
                key = await create_api_key(session, tenant, name=name, is_admin=admin, agent_id=agent_id)
                return {"tenant_id": tenant.id, "key": key}
        finally:
            await rt.close()

    result = asyncio.run(run())
    click.echo(f"tenant {tenant_name} ({result['tenant_id']}): new API key (shown once, store it now):")
    click.echo(result["key"])


@keys.command("list")
@click.option(
    "--tenant", "tenant_name", default=None, help="only this tenant's keys (default: every tenant's)"
)
def keys_list(tenant_name: str | None) -> None:
    """List API keys (never the keys themselves): id, tenant, name, prefix, admin, agent, created, revoked."""
    settings = _settings()

    async def run() -> list[tuple[str, ...]]:
        from herald.admin.keys import keys_by_tenant
        from herald.runtime import Runtime
        from herald.storage.migrate import upgrade

        rt = Runtime(settings)
        try:
            await upgrade(rt.engine)
            async with rt.sessions() as session:
                found = await keys_by_tenant(session, tenant_name)
            return [
                (
                    key.id, tenant, key.name or "-", key.prefix + "…", "admin" if key.is_admin else "-",
                    key.agent_id or "-", key.created_at.isoformat(timespec="seconds"),
                    key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-",
                )
                for key, tenant in found
            ]  # fmt: skip
        finally:
            await rt.close()

    rows = asyncio.run(run())
    header = ("id", "tenant", "name", "prefix", "admin", "agent", "created", "revoked")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@keys.command("revoke")
@click.argument("key_id")
@click.option(
    "--force", is_flag=True,
    help="revoke even the tenant's last admin key (the API refuses that; make another with keys create)",
)  # fmt: skip
def keys_revoke(key_id: str, force: bool) -> None:
    """Revoke an API key by its id (see keys list): it stops working in every Herald process within a second."""
    settings = _settings()

    async def run() -> tuple[int, str]:
        from herald.admin.keys import revoke_key
        from herald.core.errors import RequestError
        from herald.runtime import Runtime
        from herald.storage.migrate import upgrade

        rt = Runtime(settings)
        try:
            await upgrade(rt.engine)
            async with rt.sessions.begin() as session:
                key, revoked = await revoke_key(
                    session, key_id, tenant_id=None, actor="cli", keep_last_admin=not force
                )
        except RequestError as exc:
            return 1, exc.detail + (" (--force revokes it anyway)" if exc.status == 409 else "")
        finally:
            await rt.close()
        if revoked:
            return 0, f"revoked {key_id} (tenant {key.tenant_id}); it stops working within a second"
        when = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "?"
        return 0, f"{key_id} was already revoked at {when}"

    code, text = asyncio.run(run())
    if code:
        click.echo(f"herald: {text}", err=True)
        sys.exit(code)
    click.echo(text)


@main.command("mcp")
@click.option(
    "--key", envvar="HERALD_API_KEY", help="the tenant API key calls are made with (default: $HERALD_API_KEY)"
)
def mcp_stdio(key: str | None) -> None:
    """Serve Herald's tools over MCP on stdin/stdout, for a desktop MCP client that starts this command.

    A key bound to an agent acts as that agent; an admin key's calls name their agent in ``agent_id``. stdout
    carries only the protocol, so everything else (logs, migrations, refusals) goes to stderr."""
    settings = _settings()
    _logging(settings)  # basicConfig logs to stderr
    if not key:
        click.echo("herald mcp: no API key: pass --key or set HERALD_API_KEY", err=True)
        sys.exit(2)

    async def run() -> str | None:
        import contextlib

        from herald.agents.mcp import principal_of_key, serve_stdio, stdio_refusal
        from herald.runtime import Runtime
        from herald.storage.migrate import upgrade

        rt = Runtime(settings)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # nothing but the protocol may reach stdout
                await upgrade(rt.engine)
                principal = await principal_of_key(rt, key)
            refusal = stdio_refusal(principal)
            if refusal is not None or principal is None:
                return refusal
            await serve_stdio(rt, principal)
            return None
        finally:
            await rt.close()

    refusal = asyncio.run(run())
    if refusal is not None:
        click.echo(f"herald mcp: {refusal}", err=True)
        sys.exit(2)


def _dev_api_key() -> str | None:
    """The key `herald serve` made on first start in development (``<HERALD_DATA_DIR>/dev-api-key``)."""
    import os

    path = os.path.join(os.environ.get("HERALD_DATA_DIR", "var"), "dev-api-key")
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip() or None
    except OSError:
        return None


@main.command()
@click.option(
    "--from-file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="a JSON list of messages in seed 003's format (phone_number, message_type, content, priority, "
    "scheduled_for) or Herald send requests",
)
@click.option(
    "--url",
    "--base-url",
    "base_url",
    envvar=["HERALD_URL", "HERALD_BASE_URL"],
    default=DEFAULT_URL,
    show_default=True,
    help="the Herald to send to (default: $HERALD_URL, else the address `make run` serves on)",
)
@click.option(
    "--api-key",
    envvar="HERALD_API_KEY",
    help="default: $HERALD_API_KEY, else the dev key `herald serve` wrote in $HERALD_DATA_DIR (var/dev-api-key)",
)
@click.option("--agent", "agent_id", default="agent_123", show_default=True, help="for items naming no agent")
@click.option("--platform", default="sms", show_default=True, help="for items whose message_type names none")
@click.option("--chunk-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--idempotent",
    is_flag=True,
    help="key each item by the file and its position, so sending the file again replays instead of resending",
)
def send(
    path: str,
    base_url: str,
    api_key: str | None,
    agent_id: str,
    platform: str,
    chunk_size: int,
    idempotent: bool,
) -> None:
    """Send a file of messages through the bulk API; prints accepted and rejected items (exit 1 if any is)."""
    from herald.client import APIConnectionError, APIError, Herald, MessageFileError, read_messages_file

    key = api_key or _dev_api_key()
    if not key:
        click.echo(
            "herald: no API key: pass --api-key, set HERALD_API_KEY, or start `herald serve` in development "
            "mode once (it writes var/dev-api-key)",
            err=True,
        )
        sys.exit(2)
    try:
        items = read_messages_file(path, agent_id=agent_id, platform=platform, idempotent=idempotent)
    except (OSError, MessageFileError) as exc:
        click.echo(f"herald: {exc}", err=True)
        sys.exit(2)
    accepted = replayed = 0
    rejected: list[tuple[int, dict[str, Any]]] = []
    with (
        Herald(base_url, key) as client,
        click.progressbar(length=len(items), label="sending", file=sys.stderr) as bar,
    ):
        for offset in range(0, len(items), chunk_size):
            chunk = items[offset : offset + chunk_size]
            try:
                part = client.send_bulk_messages(chunk, agent_id=agent_id, platform=platform)
            except (APIError, APIConnectionError) as exc:
                click.echo(f"\nherald: {exc}", err=True)
                click.echo(
                    f"stopped after {offset} of {len(items)} items: accepted {accepted}, rejected {len(rejected)}"
                    + ("" if idempotent else " (use --idempotent to make a rerun skip what was accepted)"),
                    err=True,
                )
                sys.exit(2)
            accepted += part["accepted"]
            replayed += part["replayed"]
            rejected += [(offset + i["index"], dict(i["error"])) for i in part["items"] if "error" in i]
            bar.update(len(chunk))
    click.echo(
        f"accepted {accepted}, rejected {len(rejected)}" + (f" ({replayed} replayed)" if replayed else "")
    )
    for index, error in rejected:
        where = f"{error['field']}: " if error.get("field") else ""
        click.echo(f"  item {index}: {where}{error['detail']} ({error['status']})")
    sys.exit(1 if rejected else 0)


@main.group()
def demo() -> None:
    """Demo data and campaigns on a running Herald."""


@demo.command("dealership")
@click.option(
    "--url",
    "database_url",
    help="the demo database to (re)create: sqlite:///file, postgresql://... or mysql://... "
    "(default: sqlite under $HERALD_DATA_DIR, var/dealership.db); its dealership tables are dropped first",
)
@click.option(
    "--herald-url",
    "base_url",
    envvar=["HERALD_URL", "HERALD_BASE_URL"],
    default=DEFAULT_URL,
    show_default=True,
    help="the Herald to register it with (default: $HERALD_URL, else the address `make run` serves on)",
)
@click.option(
    "--api-key",
    envvar="HERALD_API_KEY",
    help="default: $HERALD_API_KEY, else the dev key `herald serve` wrote in $HERALD_DATA_DIR (var/dev-api-key)",
)
@click.option("--seed", default=0, show_default=True, type=int, help="the same seed gives the same database")
@click.option("--customers", default=3000, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--agent", "agent_id", default="dealer-agent", show_default=True, help="registered if missing")
@click.option("--timezone", default=None, help="the campaigns' zone (default: America/Chicago)")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="the day the data is generated around (default: today in the campaigns' zone, the day their runs see)",
)
@click.option(
    "--run/--no-run",
    "run_now",
    default=True,
    show_default=True,
    help="run every campaign once now, so its messages show in the dev inbox at once",
)
def demo_dealership(
    database_url: str | None,
    base_url: str,
    api_key: str | None,
    seed: int,
    customers: int,
    agent_id: str,
    timezone: str | None,
    today: Any,
    run_now: bool,
) -> None:
    """Build seed 004's dealership database, register it as a data source, and create one campaign per
    dealership preset (exit 1 when Herald refuses, for one when it has no campaigns API)."""
    import datetime as dt
    import os
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    import httpx

    from herald.presets import dealership
    from herald.presets import demo as demo_steps

    key = api_key or _dev_api_key()
    if not key:
        click.echo(
            "herald: no API key: pass --api-key, set HERALD_API_KEY, or start `herald serve` in development "
            "mode once (it writes var/dev-api-key)",
            err=True,
        )
        sys.exit(2)
    if database_url is None:
        path = os.path.abspath(os.path.join(os.environ.get("HERALD_DATA_DIR", "var"), "dealership.db"))
        database_url = f"sqlite:///{path}"
    try:
        zone = ZoneInfo(timezone or dealership.DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        click.echo(f"herald: --timezone: unknown time zone {timezone!r}", err=True)
        sys.exit(2)
    # A run binds :today in the campaign's zone; the data is built around that same day.
    day = today.date() if today is not None else dt.datetime.now(zone).date()
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            result = demo_steps.run(
                http, database_url=database_url, today=day, seed=seed, customers=customers,
                agent_id=agent_id, timezone=timezone, run_now=run_now,
                progress=lambda line: click.echo(line, err=True),
            )  # fmt: skip
    except demo_steps.DemoError as exc:
        click.echo(f"herald: {exc}", err=True)
        sys.exit(1)
    except (httpx.HTTPError, OSError, ValueError) as exc:
        click.echo(f"herald: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo("rows: " + ", ".join(f"{table} {count}" for table, count in result.rows.items()))
    source = result.data_source
    click.echo(f"data source {source['id']} ({source['backend']}): {source['url']}")
    click.echo(f"agent {agent_id}" + (" registered" if result.agent_created else " (already registered)"))
    for campaign in result.campaigns:
        click.echo(
            f"campaign {campaign.get('id')}: {campaign.get('name')} "
            f"[{campaign.get('event_type')}] {campaign.get('schedule')} {campaign.get('timezone')}"
        )
    for campaign, run in zip(result.campaigns, result.runs, strict=False):
        click.echo(
            f"run {run['id']} of {campaign['event_type']}: {run['status']}, audience {run['audience']}, "
            f"messages {run['created']} ({run['quiet_hours']} held for quiet hours), deduped {run['deduped']}, "
            f"opted out {run['opted_out']}, failed {run['failed']}"
        )
