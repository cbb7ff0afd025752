"""Every migration after the first only expands the schema, so old instances survive it.

A rolling upgrade runs ``authgraph migrate`` while instances of the version before still
serve: they keep inserting rows without the new columns and reading the tables they know.
So a migration may add tables, nullable or server-defaulted columns, non-unique indexes
and backfill data; it may not drop, rename, change a type, tighten a column (NOT NULL, a
new constraint or unique index) or add a NOT NULL column without a default to a table that
existed before it. Each upgrade is run in Alembic's offline mode (PostgreSQL's SQL, no
database), and every statement it writes is classified; what breaks the rule must be in
``ALLOWED`` with the reason, or the test fails (and so does an entry no longer needed).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from db.migrate import MIGRATIONS

# (revision, statement) -> why it is allowed, and what old instances do across it.
ALLOWED: dict[tuple[str, str], str] = {
    (
        "0006_mfa",
        "ALTER TABLE sessions ALTER COLUMN authenticated_at SET NOT NULL",
    ): (
        # Old instances do NOT survive this one: the version before 0006 inserts sessions
        # without authenticated_at, which PostgreSQL then refuses, so its logins fail. It is
        # released and applied; rewriting it would fork installed databases. The README's
        # Upgrades section says to cross 0006 with the instances stopped.
        "released before the rule; cross it with old instances stopped"
    ),
    (
        "0007_optional_password",
        "ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL",
    ): (
        # A loosening: old instances still write a hash for every user they create. A user
        # the new version creates without a password (passkeys, sign-in codes) reads as
        # password_hash None on an old instance, whose passlib verify_and_update(pw, None)
        # answers (False, None) after a dummy verification: a failed login, not an error.
        "loosens a column; old instances treat a missing hash as a wrong password"
    ),
}

# What expanding looks like; anything else written to the schema is a finding.
CREATE_TABLE = re.compile(r'CREATE TABLE "?(\w+)"?', re.IGNORECASE)
CREATE_INDEX = re.compile(r'CREATE (UNIQUE )?INDEX "?\w+"? ON "?(\w+)"?', re.IGNORECASE)
ADD_COLUMN = re.compile(r'ALTER TABLE "?(\w+)"? ADD COLUMN (.*)', re.IGNORECASE | re.DOTALL)
DATA = re.compile(r"(UPDATE|INSERT INTO|DELETE FROM) ", re.IGNORECASE)


def statements(upgrade: Callable[[], None]) -> list[str]:
    """The SQL ``upgrade`` writes for PostgreSQL, one statement each, whitespace collapsed."""
    out = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": out, "literal_binds": True},
    )
    with Operations.context(context):
        upgrade()
    return [" ".join(s.split()) for s in out.getvalue().split(";\n") if s.strip()]


def contractions(upgrade: Callable[[], None]) -> list[str]:
    """The statements of ``upgrade`` that are not expand-only."""
    created: set[str] = set()
    found = []
    for sql in statements(upgrade):
        if m := CREATE_TABLE.match(sql):
            created.add(m.group(1))
        elif m := CREATE_INDEX.match(sql):
            # A unique index on a table old instances write to may refuse their inserts.
            if m.group(1) and m.group(2) not in created:
                found.append(sql)
        elif m := ADD_COLUMN.match(sql):
            table, column = m.groups()
            needs_value = "NOT NULL" in column.upper() and " DEFAULT " not in column.upper()
            if needs_value and table not in created:
                found.append(sql)
        elif DATA.match(sql):
            continue  # a backfill: the schema is unchanged
        else:
            # DROP, RENAME, ALTER COLUMN (type, NOT NULL), ADD CONSTRAINT, and anything
            # this test does not know yet.
            found.append(sql)
    return found


def revisions() -> list[tuple[str, Callable[[], None]]]:
    """Every revision after the first, oldest first, with its upgrade function."""
    script = ScriptDirectory(str(MIGRATIONS))
    ordered = list(reversed(list(script.walk_revisions())))
    assert ordered[0].down_revision is None
    return [(r.revision, r.module.upgrade) for r in ordered[1:]]


def test_migrations_after_the_first_only_expand_the_schema() -> None:
    found = {(revision, sql) for revision, upgrade in revisions() for sql in contractions(upgrade)}
    unexplained = found - set(ALLOWED)
    assert not unexplained, (
        "a migration that old instances may not survive (expand first, contract in a later "
        f"release, or add it to ALLOWED with the reason): {sorted(unexplained)}"
    )
    # An entry whose statement no migration writes any more is stale.
    assert set(ALLOWED) <= found


def _contracting() -> None:
    op.drop_column("users", "display_name")
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=False))
    op.alter_column("users", "email", type_=sa.String(500))
    op.alter_column("users", "display_name", new_column_name="shown_name")
    op.create_index("uq_users_nickname", "users", ["nickname"], unique=True)
    op.create_foreign_key("fk_a", "sessions", "users", ["user_id"], ["id"])
    op.drop_table("outbox")


def _expanding() -> None:
    op.create_table(
        "things",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_index("uq_things_name", "things", ["name"], unique=True)
    op.add_column("things", sa.Column("size", sa.Integer, nullable=False))
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))
    op.add_column("users", sa.Column("level", sa.Integer, server_default="0", nullable=False))
    op.create_index("ix_users_level", "users", ["level"])
    op.execute("UPDATE users SET level = 1")


def test_migrations_expand_only_check_catches_each_contraction() -> None:
    written = statements(_contracting)
    assert len(written) == 7
    assert contractions(_contracting) == written


def test_migrations_expand_only_check_passes_each_expansion() -> None:
    assert len(statements(_expanding)) == 7
    assert contractions(_expanding) == []
