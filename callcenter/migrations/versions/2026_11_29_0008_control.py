"""control: outbound call requests and closed missed-call worklist items

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "missed_call_closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller_e164", sa.String(length=16), nullable=False),
        sa.Column("up_to", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column(
            "resolution",
            sa.Enum("done", "dismissed", name="missed_resolution", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_missed_call_closures_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_missed_call_closures_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_call_closures")),
    )
    with op.batch_alter_table("missed_call_closures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_missed_call_closures_e164_up_to", ["caller_e164", "up_to"], unique=False
        )

    op.create_table(
        "outbound_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("from_extension", sa.String(length=64), nullable=False),
        sa.Column("to_e164", sa.String(length=16), nullable=False),
        sa.Column("dial_string", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("missed_call_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "rejected",
                "unknown",
                "not_connected",
                "duplicate",
                name="dial_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("message", sa.String(length=255), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_outbound_requests_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["missed_call_id"],
            ["calls.id"],
            name=op.f("fk_outbound_requests_missed_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_outbound_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_requests")),
        sa.UniqueConstraint(
            "user_id",
            "idempotency_key",
            name=op.f("uq_outbound_requests_user_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("outbound_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbound_requests_to_created", ["to_e164", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_outbound_requests_user_to_created",
            ["user_id", "to_e164", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbound_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_requests_user_to_created")
        batch_op.drop_index("ix_outbound_requests_to_created")
    op.drop_table("outbound_requests")
    with op.batch_alter_table("missed_call_closures", schema=None) as batch_op:
        batch_op.drop_index("ix_missed_call_closures_e164_up_to")
    op.drop_table("missed_call_closures")
