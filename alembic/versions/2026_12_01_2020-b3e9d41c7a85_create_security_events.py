"""create security events: the trail of what happened to each account

Revision ID: b3e9d41c7a85
Revises: 7c1e5b9a0f42
Create Date: 2026-12-01 20:20:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b3e9d41c7a85"
down_revision: str | None = "7c1e5b9a0f42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey(
                "users.id", name=op.f("fk_security_events_user_id_users"), ondelete="SET NULL"
            ),
            nullable=True,
        ),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index(
        "ix_security_events_user_id_occurred_at_id",
        "security_events",
        ["user_id", "occurred_at", "id"],
    )
    op.create_index("ix_security_events_occurred_at_id", "security_events", ["occurred_at", "id"])
    op.create_index("ix_security_events_email_hash", "security_events", ["email_hash"])


def downgrade() -> None:
    op.drop_index("ix_security_events_email_hash", table_name="security_events")
    op.drop_index("ix_security_events_occurred_at_id", table_name="security_events")
    op.drop_index("ix_security_events_user_id_occurred_at_id", table_name="security_events")
    op.drop_table("security_events")
