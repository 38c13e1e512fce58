"""invitation failures counted in the database (the brake on guessing codes)

Revision ID: security_0002
Revises: venues_0002
Create Date: 2026-12-04 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "security_0002"
down_revision: str | None = "venues_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitation_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation_failures")),
    )
    op.create_index("ix_invitation_failures_at", "invitation_failures", ["at"], unique=False)
    op.create_index("ix_invitation_failures_chat", "invitation_failures", ["chat", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_invitation_failures_chat", table_name="invitation_failures")
    op.drop_index("ix_invitation_failures_at", table_name="invitation_failures")
    op.drop_table("invitation_failures")
