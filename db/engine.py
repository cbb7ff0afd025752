"""Engines and sessions. Engines are made by the app factory, never at import time."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.errors import _WaitTimeout
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from auth.errors import ServiceUnavailable

DATABASE = "database"
# How long past its statement timeout a PostgreSQL server may take to answer before it is
# taken for unreachable: the server cancels a slow statement itself and says so at once, so
# only a hung, frozen or partitioned server (whose kernel may still acknowledge every byte,
# so TCP never gives up) makes a client wait longer.
ANSWER_GRACE_SECONDS = 1.0
# SQLSTATE classes that mean the server cannot serve now: connection exception (08),
# insufficient resources (53: disk full, out of memory, too many connections), operator
# intervention (57: statement timeout, admin or crash shutdown, starting up).
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
SQLITE_UNAVAILABLE = (
    "database is locked",
    "unable to open database",
    "disk i/o error",
    "disk is full",
)


def normalize_database_url(url: str) -> str:
    """Pick the driver for a plain URL, so users write ``postgresql://`` and not a driver name."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return parsed.render_as_string(hide_password=False)


SQLITE_BUSY_SECONDS = 30.0


Answered = Callable[[], None]


def create_db_engine(
    url: str,
    *,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    on_answer: Answered | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url`` with the settings authgraph relies on for each backend.

    ``connect_timeout`` and ``statement_timeout`` (seconds; ``None``: unbounded) bound how
    long a hung or partitioned server can hold a caller: on PostgreSQL no wait for an answer
    lasts past the statement timeout plus :data:`ANSWER_GRACE_SECONDS`. On SQLite the
    statement timeout is the busy timeout: how long a statement waits for another writer's
    lock. A failure of the unavailable kind is raised as :class:`auth.errors.ServiceUnavailable`
    (see :func:`watch_availability`); ``on_answer`` is called after each statement that ran.
    """
    full_url = normalize_database_url(url)
    if full_url.startswith("sqlite"):
        busy = SQLITE_BUSY_SECONDS if statement_timeout is None else statement_timeout
        engine = create_engine(
            full_url, connect_args={"check_same_thread": False, "timeout": busy}, **kwargs
        )
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_seconds=busy))
        watch_availability(engine, on_answer)
        return engine
    if "poolclass" not in kwargs:
        kwargs = {"pool_size": 10, "max_overflow": 20, **kwargs}
    engine = create_engine(
        full_url,
        pool_pre_ping=True,
        connect_args=_postgres_timeouts(connect_timeout, statement_timeout),
        **kwargs,
    )
    _bound_answers(engine, statement_timeout)
    watch_availability(engine, on_answer)
    return engine


def _postgres_timeouts(connect: float | None, statement: float | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if connect is not None:
        # libpq takes whole seconds, and treats anything under 2 as 2.
        args["connect_timeout"] = max(2, math.ceil(connect))
    if statement is not None:
        args["options"] = f"-c statement_timeout={max(1, round(statement * 1000))}"
    return args


def create_reader_engine(
    engine: Engine,
    *,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    on_answer: Answered | None = None,
) -> Engine:
    """An engine for the one-statement session check that every authenticated request runs.

    On PostgreSQL the main engine's connections pay a pre-ping, a BEGIN and a ROLLBACK
    around each statement: four round trips for one read. This one runs in autocommit
    without pre-ping, so the check is one round trip (a dropped connection is retried by
    the caller instead). SQLite has no round trips and opens no transaction for a SELECT:
    the main engine serves.
    """
    if engine.dialect.name == "sqlite":
        return engine
    reader = create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_size=5,
        max_overflow=15,
        # Renew connections before server or proxy idle timeouts tend to cut them.
        pool_recycle=1800,
        connect_args=_postgres_timeouts(connect_timeout, statement_timeout),
    )
    _bound_answers(reader, statement_timeout)
    watch_availability(reader, on_answer)
    return reader


class NoAnswer(psycopg.OperationalError):
    """The server did not answer in time; the connection is closed (its state is unknown)."""


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after ``answer_timeout``.

    psycopg funnels each network wait after connecting (statements, pings, commits,
    rollbacks) through :meth:`wait`; a server that has stopped answering would otherwise
    hold the caller's thread until TCP gives up, which on a frozen host never happens.
    """

    answer_timeout: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None or self.answer_timeout is None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.answer_timeout)
        except _WaitTimeout:
            # Mid-protocol: the connection cannot be reused. Closed, it counts as a
            # disconnect, so SQLAlchemy invalidates it (and the pool's older connections).
            self.pgconn.finish()
            raise NoAnswer(
                f"no answer from the database server within {self.answer_timeout:g} s"
            ) from None


def _bound_answers(engine: Engine, statement_timeout: float | None) -> None:
    if statement_timeout is None:
        return
    answer_timeout = statement_timeout + ANSWER_GRACE_SECONDS

    @event.listens_for(engine, "do_connect")
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> BoundedConnection:
        connection = BoundedConnection.connect(*cargs, **cparams)
        connection.answer_timeout = answer_timeout
        return connection


def watch_availability(engine: Engine, on_answer: Answered | None = None) -> None:
    """Raise :class:`ServiceUnavailable` for ``engine``'s failures of the unavailable kind.

    The one place where driver errors become the domain's outage: refused or timed-out
    connections, dropped ones, statement timeouts, a full disk. Other database errors (a
    constraint, a deadlock, a bug) stay what they are. ``on_answer`` hears of each statement
    that ran, so the end of an outage is noticed by the first request that gets through.
    """

    @event.listens_for(engine, "handle_error")
    def translate(context: ExceptionContext) -> BaseException | None:
        # A failed pre-ping is the pool's to handle: it reconnects, and a failing reconnect
        # comes back here on its own.
        if context.is_pre_ping:
            return None
        reason = unavailable_reason(context)
        return None if reason is None else ServiceUnavailable(DATABASE, reason)

    if on_answer is not None:

        @event.listens_for(engine, "after_cursor_execute")
        def answered(*_args: Any) -> None:
            on_answer()


def unavailable_reason(context: ExceptionContext) -> str | None:
    """A short reason if the failure means the database is unavailable, else ``None``."""
    error = context.original_exception
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if context.is_disconnect:
        return reason
    if not isinstance(context.sqlalchemy_exception, (OperationalError, InterfaceError)):
        return None
    if context.dialect.name == "sqlite":
        return reason if any(m in reason.lower() for m in SQLITE_UNAVAILABLE) else None
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is None or sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES:
        return reason
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_seconds: float) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside one writer; foreign keys are off in SQLite unless asked for.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
    cursor.close()


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: rows stay readable after commit, with no reload round trip.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(session_factory: Callable[[], Session]) -> Iterator[Session]:
    """A session of its own in one short transaction, committed at the end of the block
    (rolled back on an exception) and closed: for stores used outside any request."""
    db = session_factory()
    try:
        with db.begin():
            yield db
    finally:
        db.close()
