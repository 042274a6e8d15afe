"""workers: wrong-number status, job keys, dead letters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> callcenter.db.UtcDateTime:
    return callcenter.db.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("client_auto_created", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("wrong_number_rule", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("wrong_number_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("wrong_number_verdicts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("auto_closed_at", _utc(), nullable=True))
        batch_op.add_column(sa.Column("wrong_number_undone_at", _utc(), nullable=True))

    op.create_table(
        "job_effects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("done_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_effects")),
        sa.UniqueConstraint("key", name=op.f("uq_job_effects_key")),
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", _utc(), nullable=False),
        sa.Column("requeued_at", _utc(), nullable=True),
        sa.Column("requeued_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["requeued_by"],
            ["users.id"],
            name=op.f("fk_dead_letters_requeued_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dead_letters_key"), ["key"], unique=False)
        batch_op.create_index("ix_dead_letters_open", ["requeued_at", "failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_open")
        batch_op.drop_index(batch_op.f("ix_dead_letters_key"))
    op.drop_table("dead_letters")
    op.drop_table("job_effects")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("wrong_number_undone_at")
        batch_op.drop_column("auto_closed_at")
        batch_op.drop_column("wrong_number_verdicts")
        batch_op.drop_column("wrong_number_reason")
        batch_op.drop_column("wrong_number_rule")
        batch_op.drop_column("client_auto_created")
