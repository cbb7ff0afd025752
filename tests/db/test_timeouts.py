"""Database waits are bounded: DB_CONNECT_TIMEOUT_SECONDS and DB_STATEMENT_TIMEOUT_SECONDS.

Past a bound, or with the server refusing, the engines raise the domain's
ServiceUnavailable; other database errors keep their own types.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from auth.errors import ServiceUnavailable
from db.engine import create_db_engine, create_reader_engine


def test_statement_timeout_cancels_a_long_postgres_statement(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url, connect_timeout=3, statement_timeout=0.2)
    reader = create_reader_engine(engine, connect_timeout=3, statement_timeout=0.2)
    try:
        for each in (engine, reader):
            with each.connect() as connection:
                assert connection.scalar(text("SHOW statement_timeout")) == "200ms"
                with pytest.raises(ServiceUnavailable) as caught:
                    connection.execute(text("SELECT pg_sleep(5)"))
                assert caught.value.dependency == "database"
                assert "statement timeout" in caught.value.reason
    finally:
        reader.dispose()
        engine.dispose()


def test_statement_timeout_sets_sqlite_busy_timeout(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/busy.db", statement_timeout=1.5)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("PRAGMA busy_timeout")) == 1500
    finally:
        engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_refused_postgres_connection_is_service_unavailable() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/authgraph"
    engine = create_db_engine(url, connect_timeout=3, statement_timeout=1)
    reader = create_reader_engine(engine, connect_timeout=3, statement_timeout=1)
    try:
        for each in (engine, reader):
            with pytest.raises(ServiceUnavailable) as caught, each.connect() as connection:
                connection.execute(text("SELECT 1"))
            assert caught.value.dependency == "database"
            assert "refused" in caught.value.reason.lower(), caught.value.reason
    finally:
        reader.dispose()
        engine.dispose()


def test_ordinary_errors_keep_their_types(postgres_url: str, tmp_path: Path) -> None:
    """A bug or a constraint is not an outage: it must not read as "try again later"."""
    answered: list[None] = []
    for url in (postgres_url, f"sqlite:///{tmp_path}/plain.db"):
        engine = create_db_engine(url, statement_timeout=5, on_answer=lambda: answered.append(None))
        try:
            with engine.connect() as connection:
                with pytest.raises(ProgrammingError if "postgres" in url else Exception) as caught:
                    connection.execute(text("SELECT no_such_column FROM no_such_table"))
                assert not isinstance(caught.value, ServiceUnavailable)
                connection.rollback()
                connection.execute(text("CREATE TEMPORARY TABLE t (id INTEGER PRIMARY KEY)"))
                connection.execute(text("INSERT INTO t VALUES (1)"))
                with pytest.raises(IntegrityError):
                    connection.execute(text("INSERT INTO t VALUES (1)"))
        finally:
            engine.dispose()
    assert answered, "on_answer hears of the statements that ran"
