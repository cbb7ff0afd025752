"""Passwordless sign-in: mailed one-time sign-in codes (and, next, passkeys).

Revision ID: 0010_passkeys
Revises: 0007_optional_password
Create Date: 2026-12-02

Numbered for its place after the other features of this session; re-chained at merge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_passkeys"
down_revision = "0007_optional_password"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sign_in_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_codes")),
        sa.UniqueConstraint("user_id", name=op.f("uq_sign_in_codes_user_id")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_codes")
