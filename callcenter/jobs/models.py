"""What background jobs leave behind: the effects they made (once each) and their dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import Base, utcnow


class JobEffect(Base):
    """One effect a job made, by its unique key (`wrong_number:42`).

    Written in the same transaction as the effect itself, so a job that runs again (a
    redelivery after a killed worker, a retry, the sweep) sees it and does nothing.
    """

    __tablename__ = "job_effects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    job: Mapped[str] = mapped_column(String(64))
    done_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadLetter(Base):
    """A job that failed every attempt: kept for an administrator to read and requeue."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_open", "requeued_at", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    requeued_at: Mapped[datetime | None] = mapped_column(default=None)
    requeued_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
