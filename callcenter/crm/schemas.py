"""API shapes of the client card: timeline, tags, notes, segments, ranks and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callcenter.calls.models import Outcome
from callcenter.calls.state import CallStatus
from callcenter.crm.policy import Right
from callcenter.crm.ranking import AbcClass, RankBasis
from callcenter.crm.segments import SegmentFilter
from callcenter.events import Direction, EndReason


class TagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class TagsIn(BaseModel):
    """Tags to put on a card; unknown names are created."""

    model_config = ConfigDict(extra="forbid")

    names: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=20
    )


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)
    call_id: int | None = None


class Person(BaseModel):
    id: int
    name: str


class _Entry(BaseModel):
    id: int
    at: datetime
    client_id: int | None
    organization_id: int | None


class CallEntry(_Entry):
    kind: Literal["call"] = "call"
    direction: Direction
    status: CallStatus
    end_reason: EndReason | None
    outcome: Outcome | None
    notes: str
    caller_num: str
    queue: str | None
    agent_name: str
    agent_user_id: int | None
    wait_seconds: float | None
    talk_seconds: float | None
    has_recording: bool


class TaskEntry(_Entry):
    kind: Literal["task"] = "task"
    title: str
    description: str
    due_at: datetime | None
    done_at: datetime | None
    result: str | None
    overdue: bool
    assignee: Person | None
    call_id: int | None


class MeetingEntry(_Entry):
    kind: Literal["meeting"] = "meeting"
    subject: str
    starts_at: datetime
    ends_at: datetime | None
    place: str
    result: str | None
    done_at: datetime | None
    assignee: Person | None
    participants: list[Person]


class NoteEntry(_Entry):
    kind: Literal["note"] = "note"
    text: str
    author: Person | None
    call_id: int | None


class RecordEntry(_Entry):
    """A change of the card recorded in the audit log: created, changed, imported, merged."""

    kind: Literal["record"] = "record"
    action: str
    user: Person | None
    details: dict[str, Any]


TimelineEntry = Annotated[
    CallEntry | TaskEntry | MeetingEntry | NoteEntry | RecordEntry, Field(discriminator="kind")
]


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    next_before: str | None
    """Pass as `before` for the next (older) page; None at the end."""


class CallClientIn(BaseModel):
    """The person on a call from a company number, picked by the operator (None: nobody)."""

    model_config = ConfigDict(extra="forbid")

    client_id: int | None


class RightsOut(BaseModel):
    role: str
    rights: list[Right]


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    filter: SegmentFilter = Field(default_factory=SegmentFilter)


class SegmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    filter: SegmentFilter | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    filter: SegmentFilter
    created_at: datetime


class RankRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: RankBasis = "calls"
    days: int = Field(default=365, ge=1, le=3650)
    """Calls of this many days back count."""


class RankRunOut(BaseModel):
    by: RankBasis
    ranked: int
    counts: dict[AbcClass, int]
    computed_at: datetime


class ClientRankOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    basis: RankBasis
    abc_class: AbcClass
    score: float
    computed_at: datetime


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    user: Person | None
    action: str
    entity: str
    entity_id: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before: int | None
    """Pass as `before` for the next (older) page; None at the end."""
