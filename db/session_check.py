"""The session check's read without a thread: :class:`auth.ports.LiveSessionReads`.

Every authenticated request reads its live session and user in one joined statement
(``FIND_ACTIVE`` of :mod:`db.repositories`). Through an ORM session and the pool on a
session-check thread that read cost about 350 µs of CPU per request, of which the hand-off
to the thread and back was 210 µs and SQLAlchemy's per-statement work most of the rest. Here
the same statement is compiled once for the engine's dialect, with its parameters' and
columns' type conversions, and run straight on the driver:

- **SQLite** (:class:`SqliteLiveReads`): on one read-only connection of the event loop's
  thread. SQLite is a local file, not a server that can hang or be cut off; in WAL mode a
  reader never waits for a writer. The one wait left (a lock held by a writer in exclusive
  mode, a WAL being recovered) is not waited for here: the busy timeout is zero, and such a
  read goes to the session-check threads, which wait as long as the engine allows.
- **PostgreSQL** (:class:`PostgresLiveReads`): psycopg's asynchronous connections, a few kept
  open. The loop waits on the socket, never blocked; the wait for a connection and for the
  answer is bounded by ``DB_STATEMENT_TIMEOUT_SECONDS`` plus the engine's grace, after which
  the connection is dropped and the request is told the database is unavailable. A connection
  the server had closed (a restart, a failover) is found by the read and the read is run once
  more on a new one, as the reader engine does.

Failures of the unavailable kind are :class:`auth.errors.ServiceUnavailable`, as everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from auth.errors import ServiceUnavailable
from auth.ports import SessionRecord, UserRecord
from db.engine import (
    ANSWER_GRACE_SECONDS,
    DATABASE,
    SQLITE_UNAVAILABLE,
    UNAVAILABLE_SQLSTATE_CLASSES,
    Answered,
)
from db.repositories import FIND_ACTIVE, active_records

Found = tuple[UserRecord, SessionRecord] | None
Converter = Callable[[Any], Any] | None
# How many PostgreSQL connections the check keeps open (and may use at once): as many as
# the session-check threads it replaces.
POSTGRES_CONNECTIONS = 8


class _Compiled:
    """``FIND_ACTIVE`` for one dialect: its SQL, its parameters in order, and the type
    conversions SQLAlchemy would apply to them and to the columns."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = FIND_ACTIVE.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: Sequence[str] = compiled.positiontup or list(compiled.binds)
        self.binds: dict[str, Converter] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self.columns: list[Converter] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in FIND_ACTIVE.selected_columns
        ]

    def parameters(self, session_id: str, user_id: str, now: datetime) -> dict[str, Any]:
        given = {"session_id": session_id, "user_id": user_id, "now": now}
        return {
            name: (value if (convert := self.binds.get(name)) is None else convert(value))
            for name, value in given.items()
        }

    def records(self, row: Sequence[Any] | None) -> Found:
        if row is None:
            return None
        values = [v if c is None else c(v) for v, c in zip(row, self.columns, strict=True)]
        return active_records(values)


class SqliteLiveReads:
    """The session check on SQLite, run on the event loop's thread (see the module's text)."""

    def __init__(
        self,
        engine: Engine,
        fallback: Callable[[str, str, datetime], Found],
        threads: Executor,
        on_answer: Answered | None = None,
    ) -> None:
        self._path = make_url(engine.url).database or ""
        self._compiled = _Compiled(engine)
        self._fallback = fallback
        self._threads = threads
        self._on_answer = on_answer
        self._connection: sqlite3.Connection | None = None

    async def find_active(self, *, session_id: str, user_id: str, now: datetime) -> Found:
        params = self._compiled.parameters(session_id, user_id, now)
        try:
            row = (
                self._connect()
                .execute(self._compiled.sql, [params[n] for n in self._compiled.names])
                .fetchone()
            )
        except sqlite3.OperationalError as exc:
            reason = str(exc).lower()
            if "locked" in reason or "busy" in reason:
                # A wait: not on the loop. The threads' read waits as the engine allows.
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self._threads, self._fallback, session_id, user_id, now
                )
            self.close()
            if any(m in reason for m in SQLITE_UNAVAILABLE):
                raise ServiceUnavailable(DATABASE, str(exc)) from exc
            raise
        if self._on_answer is not None:
            self._on_answer()
        return self._compiled.records(row)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Read-only, autocommit (each SELECT sees what is committed), never waiting.
            connection = sqlite3.connect(
                f"{Path(self._path).resolve().as_uri()}?mode=ro",  # percent-encoded
                uri=True,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA busy_timeout=0")
            self._connection = connection
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def aclose(self) -> None:
        self.close()


class PostgresLiveReads:
    """The session check on PostgreSQL, on psycopg's asynchronous connections."""

    def __init__(
        self,
        engine: Engine,
        *,
        connect_timeout: float | None,
        statement_timeout: float | None,
        on_answer: Answered | None = None,
        size: int = POSTGRES_CONNECTIONS,
    ) -> None:
        url = make_url(engine.url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._compiled = _Compiled(engine)
        self._connect_args: dict[str, Any] = {"autocommit": True}
        if connect_timeout is not None:
            self._connect_args["connect_timeout"] = max(2, int(connect_timeout + 0.999))
        if statement_timeout is not None:
            ms = max(1, round(statement_timeout * 1000))
            self._connect_args["options"] = f"-c statement_timeout={ms}"
        # The whole wait (a free connection, connecting, the answer) has one bound.
        self._bound = (
            None if statement_timeout is None else statement_timeout + ANSWER_GRACE_SECONDS
        )
        self._on_answer = on_answer
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._size = size
        self._slots: asyncio.Semaphore | None = None

    async def find_active(self, *, session_id: str, user_id: str, now: datetime) -> Found:
        params = self._compiled.parameters(session_id, user_id, now)
        if self._slots is None:  # made on the loop that uses it
            self._slots = asyncio.Semaphore(self._size)
        if self._bound is None:
            row = await self._read_in_turn(params)
        else:
            # Not asyncio.timeout: psycopg answers a cancelled read by asking the server to
            # cancel it and waiting (up to 10 s) for that, which a hung server never grants.
            # The read is left to end on its own; its connection is never used again.
            read = asyncio.ensure_future(self._read_in_turn(params))
            done, _ = await asyncio.wait((read,), timeout=self._bound)
            if not done:
                read.cancel()
                read.add_done_callback(_forget)
                raise ServiceUnavailable(
                    DATABASE, f"no answer from the database server within {self._bound:g} s"
                )
            row = read.result()
        if self._on_answer is not None:
            self._on_answer()
        return self._compiled.records(row)

    async def _read_in_turn(self, params: dict[str, Any]) -> Sequence[Any] | None:
        assert self._slots is not None
        async with self._slots:
            return await self._read(params)

    async def _read(self, params: dict[str, Any]) -> Sequence[Any] | None:
        for attempt in (1, 2):
            reused = bool(self._idle)
            try:
                connection = self._idle.pop() if reused else await self._open()
            except psycopg.OperationalError as exc:
                raise _unavailable(exc) from exc
            try:
                cursor = await connection.execute(self._compiled.sql, params)
                row = await cursor.fetchone()
            except psycopg.OperationalError as exc:
                _discard(connection)
                # A connection the server had closed while idle: once more, on a new one.
                if attempt == 1 and reused and connection.broken:
                    continue
                if not _is_unavailable(exc):
                    raise
                raise _unavailable(exc) from exc
            except BaseException:  # cancelled (the bound ran out) or worse: state unknown
                _discard(connection)
                raise
            self._idle.append(connection)
            return row
        raise AssertionError("unreachable")

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_args)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.close()


def _discard(connection: psycopg.AsyncConnection[Any]) -> None:
    # Closing the socket needs no answer from the server, so a hung one cannot hold this.
    with contextlib.suppress(Exception):
        connection.pgconn.finish()


def _forget(read: asyncio.Future[Any]) -> None:
    if not read.cancelled():
        read.exception()  # retrieved: an abandoned read's failure is no one's to log


def _is_unavailable(exc: psycopg.OperationalError) -> bool:
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES


def _unavailable(exc: psycopg.OperationalError) -> ServiceUnavailable:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ServiceUnavailable(DATABASE, reason)


def live_session_reads(
    engine: Engine,
    fallback: Callable[[str, str, datetime], Found],
    threads: Executor,
    *,
    connect_timeout: float | None,
    statement_timeout: float | None,
    on_answer: Answered | None = None,
) -> SqliteLiveReads | PostgresLiveReads | None:
    """The thread-free session check for ``engine``'s backend; ``None`` where there is none
    (an in-memory SQLite database, which only the engine's own connection can see)."""
    if engine.dialect.name == "sqlite":
        path = make_url(engine.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return SqliteLiveReads(engine, fallback, threads, on_answer)
    if engine.dialect.name == "postgresql":
        return PostgresLiveReads(
            engine,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            on_answer=on_answer,
        )
    return None
