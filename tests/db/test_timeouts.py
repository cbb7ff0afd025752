"""Database waits are bounded: DB_CONNECT_TIMEOUT_SECONDS and DB_STATEMENT_TIMEOUT_SECONDS."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db.engine import create_db_engine, create_reader_engine


def test_statement_timeout_cancels_a_long_postgres_statement(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url, connect_timeout=3, statement_timeout=0.2)
    reader = create_reader_engine(engine, connect_timeout=3, statement_timeout=0.2)
    try:
        for each in (engine, reader):
            with each.connect() as connection:
                assert connection.scalar(text("SHOW statement_timeout")) == "200ms"
                with pytest.raises(OperationalError, match="statement timeout"):
                    connection.execute(text("SELECT pg_sleep(5)"))
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
