"""Agent pause intervals (for reports of pause time by reason) and per-queue settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import Base, utcnow


class AgentPause(Base):
    """One pause of one queue member in one queue; `ended_at` is None while it lasts."""

    __tablename__ = "agent_pauses"
    __table_args__ = (
        Index("ix_agent_pauses_open", "pbx", "ended_at"),
        Index("ix_agent_pauses_interface_started", "interface", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    interface: Mapped[str] = mapped_column(String(128))
    """The member's interface (`Local/101@agents`); `calls.agents.extension_of` gives 101."""
    agent_name: Mapped[str] = mapped_column(String(255), default="")
    queue: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class QueueSettings(Base):
    """What supervisors set for a queue: its service-level T and when to raise alarms."""

    __tablename__ = "queue_settings"

    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_level_s: Mapped[int | None] = mapped_column(default=None)
    """None: the PBX's own service level for the queue, else the product default."""
    alarm_longest_wait_s: Mapped[int | None] = mapped_column(default=None)
    alarm_service_level_pct: Mapped[float | None] = mapped_column(default=None)
    alarm_no_agent: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
