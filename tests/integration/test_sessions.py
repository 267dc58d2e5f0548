"""Sessions keep the pipeline's promises: after-commit work runs only after a commit, and kept rows are written
exactly once whether the caller commits, rolls back or fails."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, func, select

from herald.runtime import Runtime
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry
from herald.storage.sessions import after_commit, keep


def _audit_table() -> Table:
    table = AuditEntry.__table__
    assert isinstance(table, Table)
    return table


async def _count(rt: Runtime) -> int:
    async with rt.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEntry))).scalar_one())


def _row() -> dict[str, Any]:
    return audit_row("t", "test", "message.blocked", "agent", "a")


async def test_after_commit_runs_once_after_commit_and_never_after_rollback(rt: Runtime) -> None:
    calls: list[str] = []

    def ran() -> None:
        calls.append("ran")

    async with rt.sessions.begin() as session:
        after_commit(session, ran)
        after_commit(session, ran)  # the same callback twice in one transaction runs once
        assert calls == []
    assert calls == ["ran"]

    async def failing() -> None:
        async with rt.sessions.begin() as session:
            after_commit(session, ran)
            raise RuntimeError("the producer failed")

    with pytest.raises(RuntimeError):
        await failing()
    async with rt.sessions.begin() as session:
        pass  # a later commit in a new session does not run the rolled-back registration
    assert calls == ["ran"]


async def test_kept_rows_commit_with_the_transaction_once(rt: Runtime) -> None:
    async with rt.sessions.begin() as session:
        keep(session, _audit_table(), [_row()])
    assert await _count(rt) == 1


async def test_kept_rows_survive_a_failed_transaction(rt: Runtime) -> None:
    async def failing() -> None:
        async with rt.sessions.begin() as session:
            keep(session, _audit_table(), [_row()])
            session.add(AuditEntry(**_row()))  # the producer's own work is rolled back
            raise RuntimeError("the producer failed")

    with pytest.raises(RuntimeError):
        await failing()
    assert await _count(rt) == 1


async def test_kept_rows_survive_an_explicit_rollback_then_commit_later_work(rt: Runtime) -> None:
    async with rt.sessions() as session:
        keep(session, _audit_table(), [_row()])
        await session.rollback()
        session.add(AuditEntry(**_row()))
        await session.commit()
    assert await _count(rt) == 2


async def test_kept_rows_of_a_session_never_committed_are_written_on_close(rt: Runtime) -> None:
    async with rt.sessions() as session:
        keep(session, _audit_table(), [_row(), _row()])
    assert await _count(rt) == 2
