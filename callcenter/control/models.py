"""Outbound call requests (click-to-call, call-backs) and closed missed-call worklist items."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import Base, str_enum, utcnow


class DialStatus(StrEnum):
    PENDING = "pending"
    """Reserved; the originate is on its way to the PBX."""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    """Sent, answer lost: it may be ringing. Never sent again."""
    NOT_CONNECTED = "not_connected"
    DUPLICATE = "duplicate"
    """A second click for the same number within the dedupe window: not sent."""


LIVE_DIAL_STATUSES = frozenset({DialStatus.PENDING, DialStatus.ACCEPTED, DialStatus.UNKNOWN})
"""Requests that may have made a phone ring: another one to the same number waits."""


class Resolution(StrEnum):
    DONE = "done"
    """Handled (called back some other way)."""
    DISMISSED = "dismissed"
    """Nothing to do (a wrong number, a duplicate, spam)."""


class OutboundRequest(Base):
    """One click on a call button: what was dialled from where, and what the PBX said."""

    __tablename__ = "outbound_requests"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_outbound_requests_user_to_created", "user_id", "to_e164", "created_at"),
        Index("ix_outbound_requests_to_created", "to_e164", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(64), default=None)
    from_extension: Mapped[str] = mapped_column(String(64))
    to_e164: Mapped[str] = mapped_column(String(16))
    dial_string: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), default=None
    )
    missed_call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), default=None
    )
    """Set for a call-back from the missed-calls worklist."""
    status: Mapped[DialStatus] = mapped_column(str_enum(DialStatus, "dial_status", length=16))
    message: Mapped[str] = mapped_column(String(255), default="")
    action_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MissedCallClosure(Base):
    """A missed-calls worklist item closed by hand: every missed call from `caller_e164`
    that started at or before `up_to` is off the list."""

    __tablename__ = "missed_call_closures"
    __table_args__ = (Index("ix_missed_call_closures_e164_up_to", "caller_e164", "up_to"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caller_e164: Mapped[str] = mapped_column(String(16))
    up_to: Mapped[datetime]
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), default=None
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    resolution: Mapped[Resolution] = mapped_column(
        str_enum(Resolution, "missed_resolution", length=16)
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
