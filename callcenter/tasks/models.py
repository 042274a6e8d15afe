"""Tasks and meetings about a client (a person) or an organisation.

Both are follow-ups: someone is assigned, may be reminded once at `remind_at`, and closes
them with a written result. The screen pop shows the open tasks of the caller.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import Base, utcnow

_UNSENT = "reminded_at IS NULL AND done_at IS NULL"


def unsent_reminders_index(table: str) -> Index:
    """The reminders still to send, by time: the periodic sender reads only these."""
    return Index(
        f"ix_{table}_unsent_reminders",
        "remind_at",
        sqlite_where=text(_UNSENT),
        postgresql_where=text(_UNSENT),
    )


class FollowUp:
    """Columns every follow-up has: who does it, the reminder, and how it was closed."""

    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True, default=None
    )
    """The call it was created from, if any."""
    remind_at: Mapped[datetime | None] = mapped_column(default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the reminder went out; set once, so a reminder is never sent twice."""
    result: Mapped[str | None] = mapped_column(Text, default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Task(FollowUp, Base):
    """Something to do by `due_at`; `title` is its subject."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_due_at", "due_at"), unsent_reminders_index("tasks"))

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True, default=None
    )
    """The contact person (a client); with `organization_id` for a company's person."""
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, default=None
    )
    due_at: Mapped[datetime | None] = mapped_column(default=None)


class Meeting(FollowUp, Base):
    """A meeting with a client or an organisation's contact persons (the participants)."""

    __tablename__ = "meetings"
    __table_args__ = (
        Index("ix_meetings_starts_at", "starts_at"),
        unsent_reminders_index("meetings"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    place: Mapped[str] = mapped_column(String(255), default="")
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True, default=None
    )
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, default=None
    )


class MeetingParticipant(Base):
    """A contact person taking part in a meeting."""

    __tablename__ = "meeting_participants"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True, index=True
    )
