"""Alembic environment: online migrations against the URL given by :mod:`db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from db.engine import create_db_engine
from db.features import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "db.migrate sets sqlalchemy.url"

engine = create_db_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration on SQLite copies a table and drops the old one; with foreign
        # keys on, that drop would cascade (dropping users would delete every session and
        # factor). The pragma is ignored inside a transaction, so it is set before one.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            # What the pragma would have refused: a migration must leave no dangling row.
            dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            assert not dangling, f"migration left rows without their parent: {dangling[:5]}"
engine.dispose()
