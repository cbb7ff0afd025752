"""The health_probe table: the row /readyz rewrites to prove the database takes writes.

Revision ID: 0004_health_probe
Revises: 0003
Create Date: 2026-12-02

Named, not just numbered: another branch may add its own 0004; whichever merges second
re-points its ``down_revision`` at the other.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_health_probe"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No row yet: the first probe inserts it (and re-inserts it if someone empties the table).
    op.create_table(
        "health_probe",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_probe")),
    )


def downgrade() -> None:
    op.drop_table("health_probe")
