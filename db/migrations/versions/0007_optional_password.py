"""Optional password: an account may have none (passkeys, sign-in codes, social identities).

Revision ID: 0007_optional_password
Revises: 0006_mfa
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_optional_password"
down_revision = "0006_mfa"
branch_labels = None
depends_on = None

# What a downgrade stores for an account without a password: no scheme recognises it, so
# no password verifies against it (auth.passwords answers a corrupt hash as a failed login).
NO_PASSWORD_MARKER = "!"


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=True)


def downgrade() -> None:
    op.execute(
        sa.text("UPDATE users SET password_hash = :marker WHERE password_hash IS NULL").bindparams(
            marker=NO_PASSWORD_MARKER
        )
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=255), nullable=False)
