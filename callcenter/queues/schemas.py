"""API shapes of the live queue board (what a wallboard shows) and of per-queue settings.

Times are UTC; `wait_s` and the like are computed at the snapshot's `at`: a screen that
ticks between snapshots adds the time passed since `at` (or counts from `since`).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from callcenter.events import DeviceState
from callcenter.kpi import Unit


class AgentState(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    IN_CALL = "in_call"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


class Alarm(StrEnum):
    LONGEST_WAIT = "longest_wait"
    """A caller has waited at least `alarm_longest_wait_s`."""
    SERVICE_LEVEL = "service_level"
    """Today's service level is under `alarm_service_level_pct`."""
    NO_AGENT = "no_agent"
    """No member is idle while callers wait, or every member is paused or unavailable."""


class KpiDefinition(BaseModel):
    """A KPI of the registry (`callcenter.kpi`), as i18n keys the screen translates; `params`
    fill the formula's placeholders (`{t}` service level seconds, `{n}` short abandon s)."""

    key: str
    unit: Unit
    name_key: str
    formula_key: str
    numerator_key: str
    denominator_key: str | None
    short_call_rule_key: str | None
    params: dict[str, float]


class KpiValue(BaseModel):
    key: str
    value: float | None
    numerator: float
    denominator: float | None
    definition: KpiDefinition | None = None
    """In snapshots; `queues.updated` leaves it out (a screen keeps the last one per KPI key:
    the texts are the same for every queue, and the queue's T is its `service_level_s`)."""


class WaitingCaller(BaseModel):
    call_key: str
    caller_num: str
    caller_name: str
    position: int
    """1 = next to be served (callers ordered by when they entered the queue)."""
    since: datetime
    wait_s: float


class AgentCall(BaseModel):
    """The call an agent rings with or talks on."""

    call_key: str
    caller_num: str
    caller_name: str
    queue: str | None
    """The queue the call came through (None: a direct call)."""
    since: datetime | None
    """Ringing or talking since (None when not known, e.g. ringing across a restart)."""


class AgentView(BaseModel):
    interface: str
    name: str
    state: AgentState
    """in_call and ringing win over paused (a paused agent may still finish a call)."""
    since: datetime | None
    call: AgentCall | None
    paused: bool
    pause_reason: str
    paused_since: datetime | None
    device: DeviceState


class QueueTargetsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    service_level_s: int | None
    """None: the PBX's own service level of the queue, else the product's default."""
    alarm_longest_wait_s: int | None
    alarm_service_level_pct: float | None
    alarm_no_agent: bool


class QueueView(BaseModel):
    """One queue as a wallboard shows it (the payload of `queues.updated`)."""

    pbx: str
    queue: str
    strategy: str
    service_level_s: float
    """The T in effect: the supervisors' setting, else the PBX's, else the default."""
    day: date
    """The local day the counters are for."""
    waiting: list[WaitingCaller]
    longest_wait_s: float | None
    """The longest wait of the callers waiting now."""
    agents: list[AgentView]
    agents_idle: int
    kpis: dict[str, KpiValue]
    """Today's KPIs in registry order, keyed by KPI key."""
    alarms: list[Alarm]
    targets: QueueTargetsOut


class BoardSnapshot(BaseModel):
    at: datetime
    timezone: str
    day: date
    queues: list[QueueView]


class QueueSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_level_s: int | None = Field(default=None, ge=1, le=3600)
    alarm_longest_wait_s: int | None = Field(default=None, ge=1, le=86400)
    alarm_service_level_pct: float | None = Field(default=None, ge=0, le=100)
    alarm_no_agent: bool = True


class QueueSettingsOut(QueueTargetsOut):
    queue: str
    updated_at: datetime | None
    updated_by: int | None
