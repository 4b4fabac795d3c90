"""create second factors: TOTP secrets, recovery codes, sign-in challenges, and how each
session authenticated

Revision ID: d2842a7c6a3d
Revises: 4575ad4f0c60
Create Date: 2026-12-01 17:52:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d2842a7c6a3d"
down_revision: str | None = "4575ad4f0c60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owned_by_user(name: str) -> sa.Column[sa.Uuid]:
    return sa.Column(
        "user_id",
        sa.Uuid(),
        sa.ForeignKey("users.id", name=op.f(f"fk_{name}_user_id_users"), ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "totp_factors",
        _owned_by_user("totp_factors"),
        sa.Column("encrypted_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_factors")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        _owned_by_user("recovery_codes"),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])
    op.create_table(
        "mfa_challenges",
        sa.Column("id", sa.Uuid(), nullable=False),
        _owned_by_user("mfa_challenges"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_challenges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mfa_challenges_token_hash")),
    )
    op.create_index("ix_mfa_challenges_user_id", "mfa_challenges", ["user_id"])
    # Sessions that exist signed in with a password, when they were created.
    if op.get_context().dialect.name == "sqlite":
        _add_session_authentication_on_sqlite()
    else:
        op.add_column(
            "auth_sessions",
            sa.Column("auth_methods", sa.JSON(), nullable=False, server_default='["pwd"]'),
        )
        op.add_column(
            "auth_sessions", sa.Column("authenticated_at", sa.DateTime(timezone=True))
        )
        op.execute("UPDATE auth_sessions SET authenticated_at = created_at")
        op.alter_column("auth_sessions", "authenticated_at", nullable=False)
        op.alter_column("auth_sessions", "auth_methods", server_default=None)


def _add_session_authentication_on_sqlite() -> None:
    # SQLite adds a NOT NULL column only by rebuilding the table, from the table as the
    # first revision made it (offline SQL has no database to read it from).
    with op.batch_alter_table(
        "auth_sessions", copy_from=_auth_sessions_before(), recreate="always"
    ) as batch:
        batch.add_column(
            sa.Column("auth_methods", sa.JSON(), nullable=False, server_default='["pwd"]')
        )
        batch.add_column(
            sa.Column(
                "authenticated_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
    op.execute("UPDATE auth_sessions SET authenticated_at = created_at")


def _auth_sessions_before() -> sa.Table:
    return sa.Table(
        "auth_sessions",
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_auth_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
        sa.Index("ix_auth_sessions_user_id", "user_id"),
    )


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.drop_column("authenticated_at")
        batch.drop_column("auth_methods")
    op.drop_index("ix_mfa_challenges_user_id", table_name="mfa_challenges")
    op.drop_table("mfa_challenges")
    op.drop_index("ix_recovery_codes_user_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("totp_factors")
