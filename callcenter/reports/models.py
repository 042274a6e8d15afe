"""Plan targets a supervisor sets, and the indexes the reports read calls by."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.calls.models import Call
from callcenter.db import Base, str_enum, utcnow
from callcenter.reports.periods import PlanPeriod


class PlanMetric(StrEnum):
    """What a plan counts (the definitions live in `callcenter.reports.plans`)."""

    DEALS = "deals"
    CLOSED = "closed"
    CALLS_ANSWERED = "calls_answered"


class PlanTarget(Base):
    """ "10 deals a day": a target for one user (a manager) or for a team (a queue's calls)."""

    __tablename__ = "plan_targets"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (queue IS NULL)", name="one_scope"),
        CheckConstraint("target > 0", name="positive_target"),
        Index("ix_plan_targets_scope", "user_id", "queue", "metric", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    queue: Mapped[str | None] = mapped_column(String(64), default=None)
    metric: Mapped[PlanMetric] = mapped_column(str_enum(PlanMetric, "plan_metric", length=16))
    period: Mapped[PlanPeriod] = mapped_column(str_enum(PlanPeriod, "plan_period", length=16))
    target: Mapped[int]
    set_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Indexes of other domains' tables that only the reports' queries need; declared here,
# beside those queries, and made by the reports' migration.
REPORT_INDEXES = (
    # The queue KPIs of a range are one index-only pass over this (PostgreSQL: the calls'
    # heap, with their JSON and notes, is about twice as wide); for a range that holds most
    # of the table the planner reads the table instead, which is as fast.
    Index(
        "ix_calls_report_ended",
        Call.ended_at,
        postgresql_include=[
            "queue",
            "queued_at",
            "answered_at",
            "wait_seconds",
            "talk_seconds",
            "end_reason",
            "outcome",
        ],
    ),
)
