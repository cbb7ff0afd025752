"""Engines and sessions. Engines are made by the app factory, never at import time."""

from __future__ import annotations

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


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings authgraph relies on for each backend."""
    full_url = normalize_database_url(url)
    if full_url.startswith("sqlite"):
        engine = create_engine(
            full_url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "poolclass" not in kwargs:
        kwargs = {"pool_size": 10, "max_overflow": 20, **kwargs}
    return create_engine(full_url, pool_pre_ping=True, **kwargs)


def create_reader_engine(engine: Engine) -> Engine:
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
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside one writer; foreign keys are off in SQLite unless asked for.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: rows stay readable after commit, with no reload round trip.
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
