"""recordings: analysis results

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recording_analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "done",
                "failed",
                name="recording_analysis_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("analysed_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("sample_format", sa.String(length=16), nullable=True),
        sa.Column("vad_mode", sa.Integer(), nullable=True),
        sa.Column("speech_s_caller", sa.Double(), nullable=True),
        sa.Column("speech_s_agent", sa.Double(), nullable=True),
        sa.Column("speech_s_total", sa.Double(), nullable=True),
        sa.Column("talk_ratio_caller", sa.Double(), nullable=True),
        sa.Column("talk_ratio_agent", sa.Double(), nullable=True),
        sa.Column("talk_ratio_total", sa.Double(), nullable=True),
        sa.Column("total_silence_s", sa.Double(), nullable=True),
        sa.Column("longest_silence_s", sa.Double(), nullable=True),
        sa.Column("overlap_s", sa.Double(), nullable=True),
        sa.Column("interruptions", sa.Integer(), nullable=True),
        sa.Column("interruptions_caller", sa.Integer(), nullable=True),
        sa.Column("interruptions_agent", sa.Integer(), nullable=True),
        sa.Column("first_speech_delay_s", sa.Double(), nullable=True),
        sa.Column("first_speech_delay_caller_s", sa.Double(), nullable=True),
        sa.Column("first_speech_delay_agent_s", sa.Double(), nullable=True),
        sa.Column("clipping_ratio", sa.Double(), nullable=True),
        sa.Column("clipped", sa.Boolean(), nullable=True),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_recording_analyses_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_analyses")),
        sa.UniqueConstraint("call_id", name=op.f("uq_recording_analyses_call_id")),
    )


def downgrade() -> None:
    op.drop_table("recording_analyses")
