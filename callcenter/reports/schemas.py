"""API shapes of the reports and plans.

Every figure carries `drill`: the address of `GET /api/reports/calls` that lists exactly the
calls counted in it (for a ratio, those below the line; `numerator_drill` those above it).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from callcenter.kpi import Unit
from callcenter.reports.models import PlanMetric
from callcenter.reports.periods import PlanPeriod


class Figure(BaseModel):
    value: float | None
    """None when there is nothing to measure (a ratio with nothing below the line)."""
    numerator: float | None = None
    denominator: float | None = None
    drill: str | None = None
    numerator_drill: str | None = None


class KpiInfo(BaseModel):
    """A KPI's definition as i18n keys; `params` fill the formula's placeholders."""

    key: str
    unit: Unit
    name_key: str
    formula_key: str
    params: dict[str, float] = Field(default_factory=dict)


class ReportRow(BaseModel):
    key: str
    label: str
    figures: dict[str, Figure]


class PauseTime(BaseModel):
    reason: str
    seconds: float


class AgentRow(ReportRow):
    user_id: int
    pauses: list[PauseTime]
    pause_total_s: float


class RangeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    timezone: str


class QueueReport(BaseModel):
    range: RangeOut
    kpis: list[KpiInfo]
    rows: list[ReportRow]
    """One per queue."""
    total: ReportRow
    by_hour: list[ReportRow]
    """Hours of the local day (key "00" to "23"), all the queues asked for together."""
    by_day: list[ReportRow]
    """Local days of the range (key "YYYY-MM-DD")."""


class AgentReport(BaseModel):
    range: RangeOut
    kpis: list[KpiInfo]
    rows: list[AgentRow]
    total: ReportRow


class DrillCall(BaseModel):
    """A call behind a figure (the columns a drill-down list shows)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    direction: str
    caller_num: str
    caller_name: str
    queue: str | None
    agent_name: str
    agent_user_id: int | None
    started_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    end_reason: str | None
    outcome: str | None
    outcome_at: datetime | None
    notes: str


class DrillPage(BaseModel):
    items: list[DrillCall]
    total: int
    page: int
    per_page: int


# --- plans -----------------------------------------------------------------------------------


class PlanTargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int | None = None
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    """A team target: the calls of this queue (give either `user_id` or `queue`)."""
    metric: PlanMetric
    period: PlanPeriod
    target: int = Field(ge=1, le=1_000_000)


class PlanTargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int | None
    queue: str | None
    metric: PlanMetric
    period: PlanPeriod
    target: int
    set_by: int | None
    updated_at: datetime


class PlanProgress(BaseModel):
    target: PlanTargetOut
    label: str
    """Whose plan: the user's name or the queue."""
    done: int
    first: date
    last: date
    drill: str | None
    """The calls counted (None for metrics that count tasks)."""


class PlanProgressOut(BaseModel):
    user_id: int | None
    at: datetime
    items: list[PlanProgress]


class Assignee(BaseModel):
    id: int
    name: str
    login: str
    role: str
