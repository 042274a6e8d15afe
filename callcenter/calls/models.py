"""Call records (one per PBX call) and the append-only log of PBX events applied to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.calls.state import CallStatus
from callcenter.db import Base, str_enum, utcnow
from callcenter.events import Direction, EndReason, Party


class Outcome(StrEnum):
    """The operator's one-click result of a call."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CALL_BACK = "call_back"
    WRONG_NUMBER = "wrong_number"
    SALE = "sale"
    COMPLAINT = "complaint"
    INFO = "info"


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx", "call_key"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_agent_user_started", "agent_user_id", "started_at"),
        Index("ix_calls_client_started", "client_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    call_key: Mapped[str] = mapped_column(String(128))
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "call_direction", length=32))
    status: Mapped[CallStatus] = mapped_column(str_enum(CallStatus, "call_status", length=32))
    caller_num: Mapped[str] = mapped_column(String(64), default="")
    caller_name: Mapped[str] = mapped_column(String(255), default="")
    caller_e164: Mapped[str | None] = mapped_column(String(16), index=True, default=None)
    callee_num: Mapped[str] = mapped_column(String(64), default="")
    callee_e164: Mapped[str | None] = mapped_column(String(16), default=None)
    queue: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    agent: Mapped[str | None] = mapped_column(String(128), default=None)
    agent_name: Mapped[str] = mapped_column(String(255), default="")
    agent_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    ringing_agents: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime]
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    wait_seconds: Mapped[float | None] = mapped_column(default=None)
    talk_seconds: Mapped[float | None] = mapped_column(default=None)
    end_reason: Mapped[EndReason | None] = mapped_column(
        str_enum(EndReason, "call_end_reason", length=32), default=None
    )
    ended_by: Mapped[Party | None] = mapped_column(
        str_enum(Party, "call_party", length=32), default=None
    )
    recording: Mapped[str | None] = mapped_column(String(255), default=None)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), default=None
    )
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), index=True, default=None
    )
    outcome: Mapped[Outcome | None] = mapped_column(
        str_enum(Outcome, "call_outcome", length=32), default=None
    )
    outcome_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    outcome_at: Mapped[datetime | None] = mapped_column(default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    client_auto_created: Mapped[bool] = mapped_column(default=False, server_default=false())
    """This call made its client card (`auto_create_clients`); a wrong number takes it back."""
    wrong_number_rule: Mapped[str | None] = mapped_column(String(32), default=None)
    """The first wrong-number rule that closed the call (`callcenter.calls.wrong_number`)."""
    wrong_number_reason: Mapped[str | None] = mapped_column(Text, default=None)
    wrong_number_verdicts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    """Every rule that fired, with its numbers, so the UI can explain it in any language."""
    auto_closed_at: Mapped[datetime | None] = mapped_column(default=None)
    wrong_number_undone_at: Mapped[datetime | None] = mapped_column(default=None)
    """Set when a person undid the auto-close: the rules never close this call again."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PbxEvent(Base):
    """Every PBX event ever applied, once: the unique key makes a replay change nothing."""

    __tablename__ = "pbx_events"
    __table_args__ = (UniqueConstraint("pbx", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(255))
    call_key: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnansweredRing(Base):
    """An agent's phone rang with a call and stopped unanswered (`agent_stopped_ringing`,
    reason `no_answer`): one row per call and agent interface, the earliest such stop.

    Written by `calls.service.ingest` from the events it applies, in the same transaction;
    derived the same way from the event log by `repository.rebuild_unanswered_rings` (the
    migration's backfill). The agents' missed calls are counted from these rows alone:
    `call_ended_at` and `call_answered_by` copy the call's end and the user who answered it;
    a trigger on `calls` (migration 0010) keeps the copies in step whoever changes the call.
    """

    __tablename__ = "unanswered_rings"
    __table_args__ = (Index("ix_unanswered_rings_call_ended_at", "call_ended_at"),)

    call_id: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    """The agent's interface as the PBX names it (e.g. `Local/101@agents`)."""
    stopped_at: Mapped[datetime]
    call_ended_at: Mapped[datetime | None] = mapped_column(default=None)
    call_answered_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    """`Call.agent_user_id` once the call was answered, else None."""
