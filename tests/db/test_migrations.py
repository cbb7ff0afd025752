from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from db.engine import create_db_engine
from db.features import metadata
from db.migrate import downgrade, upgrade


def test_migrations_match_models(database_url: str) -> None:
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata())
    engine.dispose()
    assert diff == [], "models and migrations differ: write a migration"


def test_migrations_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'round-trip.db'}"
    upgrade(url)
    downgrade(url, "base")
    engine = create_db_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    tables = set(inspect(engine).get_table_names())
    assert {"users", "sessions", "refresh_tokens", "email_tokens", "outbox"} <= tables
    engine.dispose()


def test_migration_0002_keeps_existing_users_unverified(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'existing.db'}"
    upgrade(url, "0001")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, created_at) "
                "VALUES ('u1', 'old@example.com', 'x', '2026-01-01 00:00:00')"
            )
        )
    upgrade(url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT email_verified, display_name FROM users")).one()
    engine.dispose()
    assert (bool(row[0]), row[1]) == (False, None)


def test_migration_0006_gives_existing_sessions_aal1_authenticated_at_creation(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    upgrade(url, "0004_health_probe")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, created_at) "
                "VALUES ('u1', 'old@example.com', 'x', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) "
                "VALUES ('s1', 'u1', '2026-01-02 00:00:00', '2026-01-03 00:00:00', "
                "'2026-02-01 00:00:00')"
            )
        )
    upgrade(url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT aal, amr, authenticated_at FROM sessions")).one()
    engine.dispose()
    assert (row[0], row[1], str(row[2])) == (1, "pwd", "2026-01-02 00:00:00")
