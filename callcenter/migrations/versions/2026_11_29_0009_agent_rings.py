"""agent rings: the rings that stopped unanswered at an agent, for the agents' missed calls

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 08:00:00

The agent report counted missed calls from JSON fields of `pbx_events`; it now reads the
narrow `unanswered_rings` that ingest keeps. The backfill derives the rows from the event log
exactly as `calls.repository.rebuild_unanswered_rings` does (written out here, so this
revision keeps meaning what it meant when the models change). The index on `pbx_events`
(kind, at) only served the old query: every event insert paid for it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unanswered_rings",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("stopped_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("call_ended_at", callcenter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("call_answered_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_unanswered_rings_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["call_answered_by"],
            ["users.id"],
            name=op.f("fk_unanswered_rings_call_answered_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("call_id", "agent", name=op.f("pk_unanswered_rings")),
    )
    _backfill()
    with op.batch_alter_table("unanswered_rings", schema=None) as batch_op:
        batch_op.create_index("ix_unanswered_rings_call_ended_at", ["call_ended_at"], unique=False)
    with op.batch_alter_table("pbx_events", schema=None) as batch_op:
        batch_op.drop_index("ix_pbx_events_kind_at")


def _backfill() -> None:
    events = sa.table(
        "pbx_events",
        sa.column("pbx", sa.String),
        sa.column("call_key", sa.String),
        sa.column("kind", sa.String),
        sa.column("at", callcenter.db.UtcDateTime(timezone=True)),
        sa.column("payload", sa.JSON),
    )
    calls = sa.table(
        "calls",
        sa.column("id", sa.Integer),
        sa.column("pbx", sa.String),
        sa.column("call_key", sa.String),
        sa.column("answered_at", callcenter.db.UtcDateTime(timezone=True)),
        sa.column("ended_at", callcenter.db.UtcDateTime(timezone=True)),
        sa.column("agent_user_id", sa.Integer),
    )
    rings = sa.table(
        "unanswered_rings",
        sa.column("call_id", sa.Integer),
        sa.column("agent", sa.String),
        sa.column("stopped_at", callcenter.db.UtcDateTime(timezone=True)),
        sa.column("call_ended_at", callcenter.db.UtcDateTime(timezone=True)),
        sa.column("call_answered_by", sa.Integer),
    )
    agent = events.c.payload["agent"].as_string()
    answered_by = sa.case((calls.c.answered_at.is_not(None), calls.c.agent_user_id), else_=None)
    derived = (
        sa.select(calls.c.id, agent, sa.func.min(events.c.at), calls.c.ended_at, answered_by)
        .select_from(events)
        .join(calls, sa.and_(calls.c.pbx == events.c.pbx, calls.c.call_key == events.c.call_key))
        .where(
            events.c.kind == "agent_stopped_ringing",
            events.c.payload["reason"].as_string() == "no_answer",
        )
        .group_by(calls.c.id, agent)
    )
    columns = ["call_id", "agent", "stopped_at", "call_ended_at", "call_answered_by"]
    op.execute(rings.insert().from_select(columns, derived))


def downgrade() -> None:
    with op.batch_alter_table("pbx_events", schema=None) as batch_op:
        batch_op.create_index("ix_pbx_events_kind_at", ["kind", "at"], unique=False)
    with op.batch_alter_table("unanswered_rings", schema=None) as batch_op:
        batch_op.drop_index("ix_unanswered_rings_call_ended_at")
    op.drop_table("unanswered_rings")
