"""Engines and sessions. Engines are made by the app factory, never at import time."""

from __future__ import annotations

import functools
import math
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_database_url(url: str) -> str:
    """Pick the driver for a plain URL, so users write ``postgresql://`` and not a driver name."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return parsed.render_as_string(hide_password=False)


SQLITE_BUSY_SECONDS = 30.0


def create_db_engine(
    url: str,
    *,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url`` with the settings authgraph relies on for each backend.

    ``connect_timeout`` and ``statement_timeout`` (seconds; ``None``: unbounded) bound how
    long a hung or partitioned server can hold a caller. On SQLite the statement timeout is
    the busy timeout: how long a statement waits for another writer's lock.
    """
    full_url = normalize_database_url(url)
    if full_url.startswith("sqlite"):
        busy = SQLITE_BUSY_SECONDS if statement_timeout is None else statement_timeout
        engine = create_engine(
            full_url, connect_args={"check_same_thread": False, "timeout": busy}, **kwargs
        )
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_seconds=busy))
        return engine
    if "poolclass" not in kwargs:
        kwargs = {"pool_size": 10, "max_overflow": 20, **kwargs}
    return create_engine(
        full_url,
        pool_pre_ping=True,
        connect_args=_postgres_timeouts(connect_timeout, statement_timeout),
        **kwargs,
    )


def _postgres_timeouts(connect: float | None, statement: float | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if connect is not None:
        # libpq takes whole seconds, and treats anything under 2 as 2.
        args["connect_timeout"] = max(2, math.ceil(connect))
    if statement is not None:
        args["options"] = f"-c statement_timeout={max(1, round(statement * 1000))}"
    return args


def create_reader_engine(
    engine: Engine, *, connect_timeout: float | None = None, statement_timeout: float | None = None
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
    return create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_size=5,
        max_overflow=15,
        # Renew connections before server or proxy idle timeouts tend to cut them.
        pool_recycle=1800,
        connect_args=_postgres_timeouts(connect_timeout, statement_timeout),
    )


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
