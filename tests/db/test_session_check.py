"""db.session_check: the thread-free session check reads what the repository reads, on SQLite
and PostgreSQL, and never waits on the event loop."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from auth.ports import ClientInfo
from db.engine import create_db_engine, create_session_factory
from db.models import User
from db.repositories import SqlUnitOfWork
from db.session_check import PostgresLiveReads, SqliteLiveReads, live_session_reads
from tests.aio import run_coroutine

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, statement_timeout=5)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> Iterator[SqlUnitOfWork]:
    unit = SqlUnitOfWork(create_session_factory(engine)())
    yield unit
    unit.close()


@pytest.fixture
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def _reads(engine: Engine, uow: SqlUnitOfWork, threads: ThreadPoolExecutor) -> Any:
    def fallback(session_id: str, user_id: str, now: datetime) -> Any:
        return uow.sessions.find_active(session_id=session_id, user_id=user_id, now=now)

    reads = live_session_reads(engine, fallback, threads, connect_timeout=5, statement_timeout=5)
    assert reads is not None
    return reads


def _session(uow: SqlUnitOfWork) -> tuple[str, str]:
    user = uow.users.add(email="check@example.com", password_hash="hash", now=NOW)
    session = uow.sessions.open(
        user_id=user.id, now=NOW, expires_at=LATER, client=ClientInfo("ua", "192.0.2.1")
    )
    uow.commit()
    return user.id, session.id


def _find(reads: Any, session_id: str, user_id: str, now: datetime = NOW) -> Any:
    async def find() -> Any:
        try:
            return await reads.find_active(session_id=session_id, user_id=user_id, now=now)
        finally:
            await reads.aclose()

    return run_coroutine(find())


def test_find_active_reads_the_records_the_repository_reads(
    engine: Engine, uow: SqlUnitOfWork, threads: ThreadPoolExecutor
) -> None:
    user_id, session_id = _session(uow)
    found = _find(_reads(engine, uow, threads), session_id, user_id)
    expected = uow.sessions.find_active(session_id=session_id, user_id=user_id, now=NOW)
    assert found is not None
    assert expected is not None
    # Every column, converted alike: aware UTC datetimes, booleans, strings.
    assert asdict(found[0]) == asdict(expected[0])  # type: ignore[call-overload]
    assert asdict(found[1]) == asdict(expected[1])  # type: ignore[call-overload]
    assert found[1].expires_at == LATER
    assert found[0].email_verified is False


def test_find_active_of_an_ended_session_is_none(
    engine: Engine, uow: SqlUnitOfWork, threads: ThreadPoolExecutor
) -> None:
    user_id, session_id = _session(uow)
    reads = _reads(engine, uow, threads)
    assert _find(reads, session_id, user_id, now=LATER) is None  # expired
    assert _find(reads, session_id, "someone else") is None
    assert _find(reads, session_id, user_id) is not None
    uow.db.execute(update(User).where(User.id == user_id).values(disabled_at=NOW))
    uow.commit()
    assert _find(reads, session_id, user_id) is None  # disabled: seen at once
    uow.db.execute(update(User).where(User.id == user_id).values(disabled_at=None))
    uow.commit()
    assert uow.sessions.revoke(user_id=user_id, now=NOW, reason="test", only=session_id) == 1
    uow.commit()
    assert _find(reads, session_id, user_id) is None  # revoked: seen at once


def test_live_session_reads_by_backend(engine: Engine, threads: ThreadPoolExecutor) -> None:
    reads = live_session_reads(
        engine, lambda *_: None, threads, connect_timeout=5, statement_timeout=5
    )
    kind = SqliteLiveReads if engine.dialect.name == "sqlite" else PostgresLiveReads
    assert isinstance(reads, kind)


def test_live_session_reads_of_in_memory_sqlite_is_none(threads: ThreadPoolExecutor) -> None:
    engine = create_db_engine("sqlite://")
    reads = live_session_reads(
        engine, lambda *_: None, threads, connect_timeout=5, statement_timeout=5
    )
    assert reads is None
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """SQLite only, for what only SQLite has (its locks: PostgreSQL readers never wait)."""
    path = tmp_path / "authgraph.db"
    shutil.copy(sqlite_template, path)
    engine = create_db_engine(f"sqlite:///{path}", statement_timeout=5)
    yield engine
    engine.dispose()


def test_sqlite_read_that_would_wait_goes_to_a_thread_and_the_loop_runs_on(
    sqlite_engine: Engine, threads: ThreadPoolExecutor
) -> None:
    engine = sqlite_engine
    uow = SqlUnitOfWork(create_session_factory(engine)())
    user_id, session_id = _session(uow)
    reads = _reads(engine, uow, threads)
    # A writer in exclusive locking mode keeps every reader out, even in WAL mode.
    path = engine.url.database
    assert path is not None
    # An exclusive-mode writer needs every other connection closed (their shared memory).
    uow.db.close()
    engine.dispose()
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA locking_mode=EXCLUSIVE")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE users SET email = email")

    async def scenario() -> tuple[int, Any]:
        ticks = 0
        read = asyncio.ensure_future(
            reads.find_active(session_id=session_id, user_id=user_id, now=NOW)
        )
        for _ in range(20):  # the loop keeps running while the read waits in its thread
            await asyncio.sleep(0.01)
            ticks += 1
        assert not read.done()
        writer.execute("COMMIT")
        writer.close()  # an exclusive-mode connection keeps its lock until it closes
        found = await read
        await reads.aclose()
        return ticks, found

    ticks, found = run_coroutine(scenario())
    uow.close()
    assert ticks == 20
    assert found is not None
    assert found[1].id == session_id


def test_sqlite_file_whose_path_needs_escaping_in_a_uri_is_read(
    tmp_path: Path, sqlite_template: Path, threads: ThreadPoolExecutor
) -> None:
    path = tmp_path / "dir 100% #1" / "authgraph.db"  # "#" ends a URI path, "%" escapes
    path.parent.mkdir()
    shutil.copy(sqlite_template, path)
    engine = create_db_engine(f"sqlite:///{path}")
    uow = SqlUnitOfWork(create_session_factory(engine)())
    try:
        user_id, session_id = _session(uow)
        found = _find(_reads(engine, uow, threads), session_id, user_id)
        assert found is not None
        assert found[1].id == session_id
    finally:
        uow.close()
        engine.dispose()
