"""Administration: user roles, disabled accounts, the last sign-in time, admin audit notes.

Revision ID: 0009_admin
Revises: 0008_security_events
Create Date: 2026-12-02

Written beside the security-events and other revisions of this session; the lead re-chains
``down_revision`` at merge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_admin"
down_revision = "0008_security_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
    )
    op.create_table(
        "admin_audit",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["security_events.id"],
            name=op.f("fk_admin_audit_event_id_security_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_admin_audit")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("last_sign_in_at", sa.DateTime(), nullable=True))
    # The best earlier answer: the newest session still on record.
    op.execute(
        "UPDATE users SET last_sign_in_at = "
        "(SELECT MAX(sessions.created_at) FROM sessions WHERE sessions.user_id = users.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_sign_in_at")
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("disabled_at")
    op.drop_table("admin_audit")
    op.drop_table("user_roles")
