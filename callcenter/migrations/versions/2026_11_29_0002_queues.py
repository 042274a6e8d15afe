"""queues: agent pauses, queue settings and thresholds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("interface", sa.String(length=128), nullable=False),
        sa.Column("agent_name", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("started_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", callcenter.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_pauses")),
    )
    with op.batch_alter_table("agent_pauses", schema=None) as batch_op:
        batch_op.create_index("ix_agent_pauses_open", ["pbx", "ended_at"], unique=False)
        batch_op.create_index(
            "ix_agent_pauses_interface_started", ["interface", "started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_agent_pauses_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "queue_settings",
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("service_level_s", sa.Integer(), nullable=True),
        sa.Column("alarm_longest_wait_s", sa.Integer(), nullable=True),
        sa.Column("alarm_service_level_pct", sa.Double(), nullable=True),
        sa.Column("alarm_no_agent", sa.Boolean(), nullable=False),
        sa.Column("updated_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_queue_settings_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_queue_settings")),
    )


def downgrade() -> None:
    op.drop_table("queue_settings")
    with op.batch_alter_table("agent_pauses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_pauses_started_at"))
        batch_op.drop_index("ix_agent_pauses_interface_started")
        batch_op.drop_index("ix_agent_pauses_open")
    op.drop_table("agent_pauses")
