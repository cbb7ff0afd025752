"""The signing_keys table: asymmetric access-token keys and their rotation state (issue 13).

Revision ID: 0005_signing_keys
Revises: 0004_health_probe
Create Date: 2026-12-02

No key is created here: `authgraph migrate` creates the first one after upgrading (it needs
KEY_ENCRYPTION_KEY, which a migration should not read).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_signing_keys"
down_revision = "0004_health_probe"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.Column("published_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_index(
        "uq_signing_keys_one_current",
        "signing_keys",
        ["state"],
        unique=True,
        sqlite_where=sa.text("state = 'current'"),
        postgresql_where=sa.text("state = 'current'"),
    )


def downgrade() -> None:
    op.drop_index("uq_signing_keys_one_current", table_name="signing_keys")
    op.drop_table("signing_keys")
