"""Structured logs: JSON lines in production, key-value lines in development, the bound context on every line
(stdlib records included), and no secret in the output whatever a call passes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from herald.core import logs

KEY = "hk_" + "A1b2C3d4" * 5


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """JSON logs captured for one test; Herald's handler is taken off the root logger afterwards."""
    stream = io.StringIO()
    logs.configure(json=True, level="DEBUG", stream=stream)
    yield stream
    logs.reset()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_request_id_and_tenant(output: io.StringIO) -> None:
    with logs.bound(request_id="req-1") as fields:
        logs.bind(tenant="ten_1", message_id="msg_1", agent=None)
        logs.get_logger("herald.test").info("accepted", count=2)
        logging.getLogger("herald.stdlib").warning("queued %d messages", 3)
    logs.get_logger("herald.test").info("after")
    first, second, after = lines(output)
    assert first["event"] == "accepted"
    assert first["count"] == 2
    assert (first["request_id"], first["tenant"], first["message_id"]) == ("req-1", "ten_1", "msg_1")
    assert "agent" not in first  # None is not bound
    assert first["level"] == "info"
    assert first["logger"] == "herald.test"
    assert "timestamp" in first
    assert second["event"] == "queued 3 messages"  # a stdlib record, through the same processors
    assert (second["request_id"], second["tenant"], second["level"]) == ("req-1", "ten_1", "warning")
    assert fields == {"request_id": "req-1", "tenant": "ten_1", "message_id": "msg_1"}
    assert "request_id" not in after  # unbound when the work ended
    assert "tenant" not in after


async def test_units_of_work_nest_and_a_task_inside_one_binds_into_it(output: io.StringIO) -> None:
    log = logs.get_logger("herald.test")

    async def deliver() -> None:
        logs.bind(provider="webhook")  # a task of its own, inside the request's unit of work
        log.info("in the task")

    with logs.bound(request_id="req-2") as request:
        with logs.bound(message_id="msg_2", tenant="ten_2"):
            log.info("delivering", tenant="ten_explicit")  # what the call passes wins
        await asyncio.create_task(deliver())
        log.info("request done")
    inner, task, done = [line for line in lines(output) if line["logger"] == "herald.test"]
    assert (inner["request_id"], inner["message_id"], inner["tenant"]) == ("req-2", "msg_2", "ten_explicit")
    assert task["request_id"] == "req-2"
    assert task["provider"] == "webhook"
    assert "message_id" not in done  # the inner unit's fields ended with it
    assert request == {"request_id": "req-2", "provider": "webhook"}  # the summary line sees the task's field


def fail_with(key: str) -> None:
    raise ValueError(f"bad key {key}")


def test_secrets_passed_to_a_log_call_are_redacted(output: io.StringIO) -> None:
    logs.get_logger("herald.test").info(
        "channel configured",
        api_key="plain-secret-1",
        Authorization="Bearer plain-secret-2",
        config={"bot_token": "plain-secret-3", "nested": [{"password": "plain-secret-4"}], "url": "ok"},
        webhook_secret="plain-secret-5",
        note=f"the key {KEY} was used",
        header="Bearer plain-secret-6",
    )
    logging.getLogger("herald.stdlib").error("refused key %s", KEY)
    try:
        fail_with(KEY)
    except ValueError:
        logging.getLogger("herald.stdlib").exception("failed")
    text = output.getvalue()
    for n in range(1, 7):
        assert f"plain-secret-{n}" not in text
    assert KEY not in text
    structured, stdlib, failed = lines(output)
    assert structured["api_key"] == logs.REDACTED
    assert structured["config"]["bot_token"] == logs.REDACTED
    assert structured["config"]["nested"][0]["password"] == logs.REDACTED
    assert structured["config"]["url"] == "ok"  # only secrets go
    assert structured["note"] == f"the key hk_{logs.REDACTED} was used"
    assert stdlib["event"] == f"refused key hk_{logs.REDACTED}"
    assert "ValueError" in failed["exception"]


def test_development_writes_readable_key_value_lines() -> None:
    stream = io.StringIO()
    logs.configure(json=False, level="INFO", stream=stream)
    try:
        with logs.bound(request_id="req-2"):
            logs.get_logger("herald.test").info("sent", token="plain-secret", status=201)
            logging.getLogger("uvicorn.error").info("Started server process")
    finally:
        logs.reset()
    sent, started = stream.getvalue().splitlines()
    assert "sent" in sent
    assert "request_id=req-2" in sent
    assert "status=201" in sent
    assert f"token={logs.REDACTED}" in sent
    assert "plain-secret" not in sent
    assert "Started server process" in started
    assert "[uvicorn.error]" in started
    with pytest.raises(json.JSONDecodeError):
        json.loads(sent)


@pytest.mark.parametrize(
    ("name", "secret"),
    [("authorization", True), ("X-Api-Key", True), ("slack_bot_token", True), ("client_secret", True),
     ("credentials", True), ("tenant", False), ("message_id", False), ("token_count", False)],
)  # fmt: skip
def test_secret_key_names(name: str, secret: bool) -> None:
    assert logs.is_secret_key(name) is secret


def test_before_configure_structured_lines_are_plain_stdlib_records(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.reset()
    with caplog.at_level(logging.INFO, logger="herald.embedded"), logs.bound(request_id="req-3"):
        logs.get_logger("herald.embedded").info("request", route="/health", status=200)
    (record,) = [r for r in caplog.records if r.name == "herald.embedded"]
    assert record.getMessage() == "request"
    assert (record.__dict__["route"], record.__dict__["request_id"]) == ("/health", "req-3")
    assert capsys.readouterr().out == ""  # nothing printed behind the host's logging


def test_configure_takes_back_uvicorn_loggers_an_earlier_dict_config_disabled() -> None:
    """uvicorn's own config (a test server, an embedding host) or alembic's may have disabled or silenced the
    uvicorn loggers, and Herald's own, before Herald configures logging; their lines must still come out in
    Herald's format."""
    import logging.config

    herald_logger = logging.getLogger("herald.pipeline.worker")  # exists before the dictConfig, as at import

    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": True,
         "loggers": {"uvicorn": {"level": "INFO", "propagate": False}, "uvicorn.error": {"level": "WARNING"}}}
    )  # fmt: skip
    stream = io.StringIO()
    logs.configure(json=True, level="INFO", stream=stream)
    try:
        logging.getLogger("uvicorn.error").info("Started server process")
        herald_logger.error("channel webhook raised unexpectedly")
    finally:
        logs.reset()
    started, herald_line = stream.getvalue().splitlines()
    assert json.loads(started)["event"] == "Started server process"
    assert json.loads(herald_line)["event"] == "channel webhook raised unexpectedly"


def test_development_tracebacks_show_no_local_variables() -> None:
    stream = io.StringIO()
    logs.configure(json=False, level="INFO", stream=stream)

    def connect(password: str) -> None:
        raise ConnectionError("database is gone")

    secret = "-".join(("pg", "password", "123"))  # not in the source lines a traceback quotes
    try:
        try:
            connect(secret)
        except ConnectionError:
            logs.get_logger("herald.test.tracebacks").exception("a pass failed")
    finally:
        logs.reset()
    text = stream.getvalue()
    assert "Traceback" in text
    assert "database is gone" in text
    assert secret not in text
