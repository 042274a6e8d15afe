"""crm: tags, notes, meetings, tasks, field permissions

Tags on clients and organisations, notes, saved segments, ABC ranks, meetings with their
participants, the follow-up columns of tasks, and (PostgreSQL) a trigger that makes the
audit log append-only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSENT = "reminded_at IS NULL AND done_at IS NULL"
_AUDIT_GUARD_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_AUDIT_GUARD_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""


def _utc() -> callcenter.db.UtcDateTime:
    return callcenter.db.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
    )
    op.create_table(
        "client_tags",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_tags_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_client_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("client_id", "tag_id", name=op.f("pk_client_tags")),
    )
    with op.batch_alter_table("client_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_tags_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "organization_tags",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_tags_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["tags.id"],
            name=op.f("fk_organization_tags_tag_id_tags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "tag_id", name=op.f("pk_organization_tags")),
    )
    with op.batch_alter_table("organization_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organization_tags_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint(
            "client_id IS NOT NULL OR organization_id IS NOT NULL",
            name=op.f("ck_notes_has_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_notes_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_notes_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_notes_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notes_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notes_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notes_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_segments_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )

    op.create_table(
        "client_ranks",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("abc_class", sa.String(length=1), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("computed_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_ranks_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "basis", name=op.f("pk_client_ranks")),
    )
    with op.batch_alter_table("client_ranks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_ranks_abc_class"), ["abc_class"], unique=False)

    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("starts_at", _utc(), nullable=False),
        sa.Column("ends_at", _utc(), nullable=True),
        sa.Column("place", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("remind_at", _utc(), nullable=True),
        sa.Column("reminded_at", _utc(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("done_at", _utc(), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_meetings_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_meetings_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_meetings_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"],
            ["users.id"],
            name=op.f("fk_meetings_closed_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_meetings_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_meetings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
    )
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meetings_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_meetings_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_meetings_client_id"), ["client_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_meetings_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_meetings_starts_at", ["starts_at"], unique=False)
        batch_op.create_index(
            "ix_meetings_unsent_reminders",
            ["remind_at"],
            unique=False,
            sqlite_where=sa.text(_UNSENT),
            postgresql_where=sa.text(_UNSENT),
        )

    op.create_table(
        "meeting_participants",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_meeting_participants_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_participants_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("meeting_id", "client_id", name=op.f("pk_meeting_participants")),
    )
    with op.batch_alter_table("meeting_participants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_participants_client_id"), ["client_id"], unique=False
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("call_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("remind_at", _utc(), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", _utc(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_call_id"), ["call_id"], unique=False)
        batch_op.create_index("ix_tasks_due_at", ["due_at"], unique=False)
        batch_op.create_index(
            "ix_tasks_unsent_reminders",
            ["remind_at"],
            unique=False,
            sqlite_where=sa.text(_UNSENT),
            postgresql_where=sa.text(_UNSENT),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_created_by_users"),
            "users",
            ["created_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_closed_by_users"), "users", ["closed_by"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_call_id_calls"), "calls", ["call_id"], ["id"], ondelete="SET NULL"
        )

    if op.get_bind().dialect.name == "postgresql":
        # No code path updates or deletes audit entries; this makes sure nothing else does.
        # (A user with audit entries can then only be deactivated, never deleted.)
        op.execute(_AUDIT_GUARD_FUNCTION)
        op.execute(_AUDIT_GUARD_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tasks_call_id_calls"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_tasks_closed_by_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_tasks_created_by_users"), type_="foreignkey")
        batch_op.drop_index("ix_tasks_unsent_reminders")
        batch_op.drop_index("ix_tasks_due_at")
        batch_op.drop_index(batch_op.f("ix_tasks_call_id"))
        batch_op.drop_column("closed_by")
        batch_op.drop_column("result")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("remind_at")
        batch_op.drop_column("call_id")
        batch_op.drop_column("created_by")

    with op.batch_alter_table("meeting_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_participants_client_id"))
    op.drop_table("meeting_participants")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_index("ix_meetings_unsent_reminders")
        batch_op.drop_index("ix_meetings_starts_at")
        batch_op.drop_index(batch_op.f("ix_meetings_organization_id"))
        batch_op.drop_index(batch_op.f("ix_meetings_client_id"))
        batch_op.drop_index(batch_op.f("ix_meetings_call_id"))
        batch_op.drop_index(batch_op.f("ix_meetings_assignee_id"))
    op.drop_table("meetings")

    with op.batch_alter_table("client_ranks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_ranks_abc_class"))
    op.drop_table("client_ranks")

    op.drop_table("segments")

    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notes_organization_id"))
        batch_op.drop_index(batch_op.f("ix_notes_created_at"))
        batch_op.drop_index(batch_op.f("ix_notes_client_id"))
    op.drop_table("notes")

    with op.batch_alter_table("organization_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organization_tags_tag_id"))
    op.drop_table("organization_tags")

    with op.batch_alter_table("client_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_tags_tag_id"))
    op.drop_table("client_tags")

    op.drop_table("tags")
