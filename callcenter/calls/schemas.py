"""API shapes of call records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcenter.calls.models import Outcome
from callcenter.calls.state import CallStatus
from callcenter.events import Direction, EndReason, Party


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pbx: str
    call_key: str
    direction: Direction
    status: CallStatus
    caller_num: str
    caller_name: str
    caller_e164: str | None
    callee_num: str
    queue: str | None
    agent: str | None
    agent_name: str
    agent_user_id: int | None
    started_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    end_reason: EndReason | None
    ended_by: Party | None
    recording: str | None
    client_id: int | None
    organization_id: int | None
    outcome: Outcome | None
    outcome_at: datetime | None
    notes: str
    wrong_number_rule: str | None = None
    """Set when the wrong-number rules closed the call: the first rule that fired..."""
    wrong_number_reason: str | None = None
    """...every reason, in English with the numbers used..."""
    wrong_number_verdicts: list[dict[str, Any]] | None = None
    """...and each rule's code and numbers, for a message in the reader's language."""
    auto_closed_at: datetime | None = None
    wrong_number_undone_at: datetime | None = None


class CallPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome | None = None
    notes: str | None = Field(default=None, max_length=10_000)
