"""imports: batches, templates, merges

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _status_enum(name: str, values: list[str]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("file_kind", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            _status_enum(
                "import_status",
                ["uploaded", "previewed", "queued", "running", "done", "failed", "undone"],
            ),
            nullable=False,
        ),
        sa.Column("sheets", sa.JSON(), nullable=False),
        sa.Column("sheet", sa.String(length=255), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("area_code", sa.String(length=8), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("previewed_at", callcenter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("started_at", callcenter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", callcenter.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("undone_at", callcenter.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["users.id"],
            name=op.f("fk_import_batches_uploaded_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_batches_sha256"), ["sha256"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_import_batches_uploaded_by"), ["uploaded_by"], unique=False
        )

    op.create_table(
        "import_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_import_templates_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_import_templates_name")),
    )

    op.create_table(
        "import_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column(
            "action",
            _status_enum("import_change_action", ["created", "updated"]),
            nullable=False,
        ),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_changes_batch_id_import_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_changes")),
    )
    with op.batch_alter_table("import_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_changes_batch_entity", ["batch_id", "entity", "action"], unique=False
        )

    op.create_table(
        "client_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("merged_by", sa.Integer(), nullable=True),
        sa.Column("merged_at", callcenter.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_by"],
            ["users.id"],
            name=op.f("fk_client_merges_merged_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_merges")),
    )
    with op.batch_alter_table("client_merges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_client_merges_survivor", ["entity", "survivor_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("client_merges", schema=None) as batch_op:
        batch_op.drop_index("ix_client_merges_survivor")
    op.drop_table("client_merges")
    with op.batch_alter_table("import_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_import_changes_batch_entity")
    op.drop_table("import_changes")
    op.drop_table("import_templates")
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_batches_uploaded_by"))
        batch_op.drop_index(batch_op.f("ix_import_batches_sha256"))
    op.drop_table("import_batches")
