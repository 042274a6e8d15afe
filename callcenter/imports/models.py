"""Import batches, saved column mappings and the record of every change a batch made."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import Base, utcnow


class BatchStatus(StrEnum):
    UPLOADED = "uploaded"
    PREVIEWED = "previewed"
    QUEUED = "queued"
    """Started by a user; the background job has not picked it up yet."""
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNDONE = "undone"


class ChangeAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"


def _str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class ImportBatch(Base):
    """One uploaded file and everything decided and done with it."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    """The name the uploader gave, for display only: the file is stored under `stored_name`."""
    stored_name: Mapped[str] = mapped_column(String(64))
    file_kind: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    status: Mapped[BatchStatus] = mapped_column(
        _str_enum(BatchStatus, "import_status"), default=BatchStatus.UPLOADED
    )
    sheets: Mapped[list[str]] = mapped_column(JSON, default=list)
    sheet: Mapped[str | None] = mapped_column(String(255), default=None)
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    region: Mapped[str] = mapped_column(String(2))
    area_code: Mapped[str] = mapped_column(String(8), default="")
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    previewed_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)


class ImportTemplate(Base):
    """A saved column mapping (field → header names), reused for files of the same shape."""

    __tablename__ = "import_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    mapping: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImportChange(Base):
    """One row a batch created or changed; `before` holds the values an undo puts back."""

    __tablename__ = "import_changes"
    __table_args__ = (Index("ix_import_changes_batch_entity", "batch_id", "entity", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(16))
    """"client", "organization" or "phone"."""
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[ChangeAction] = mapped_column(_str_enum(ChangeAction, "import_change_action"))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
