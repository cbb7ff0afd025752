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
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
