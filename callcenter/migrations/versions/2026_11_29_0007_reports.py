"""reports: plan targets

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column(
            "metric",
            sa.Enum(
                "deals", "closed", "calls_answered", name="plan_metric", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column(
            "period",
            sa.Enum("day", "week", "month", name="plan_period", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (queue IS NULL)", name=op.f("ck_plan_targets_one_scope")
        ),
        sa.CheckConstraint("target > 0", name=op.f("ck_plan_targets_positive_target")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_plan_targets_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["set_by"], ["users.id"], name=op.f("fk_plan_targets_set_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_targets")),
    )
    with op.batch_alter_table("plan_targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plan_targets_scope", ["user_id", "queue", "metric", "period"], unique=False
        )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calls_report_ended",
            ["ended_at"],
            unique=False,
            postgresql_include=[
                "queue",
                "queued_at",
                "answered_at",
                "wait_seconds",
                "talk_seconds",
                "end_reason",
                "outcome",
            ],
        )
    with op.batch_alter_table("pbx_events", schema=None) as batch_op:
        batch_op.create_index("ix_pbx_events_kind_at", ["kind", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pbx_events", schema=None) as batch_op:
        batch_op.drop_index("ix_pbx_events_kind_at")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_report_ended")
    with op.batch_alter_table("plan_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_targets_scope")
    op.drop_table("plan_targets")
