"""API shapes of tasks and meetings."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

_TEXT = 10_000


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=255)
    """The subject."""
    description: str = Field(default="", max_length=_TEXT)
    client_id: int | None = None
    """The contact person; their organisation is taken when `organization_id` is not given."""
    organization_id: int | None = None
    assignee_id: int | None = None
    """Default: whoever creates it."""
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime | None = None
    call_id: int | None = None


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=_TEXT)
    client_id: int | None = None
    organization_id: int | None = None
    assignee_id: int | None = None
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime | None = None
    """A new time sends the reminder again at that time."""


class CallTaskIn(BaseModel):
    """A task from a call card: everything optional, the call gives the rest."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str = Field(default="", max_length=_TEXT)
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime | None = None


class CloseIn(BaseModel):
    """Closing needs a written result."""

    model_config = ConfigDict(extra="forbid")

    result: str = Field(max_length=_TEXT)

    @field_validator("result")
    @classmethod
    def _written(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a result is required to close")
        return value


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    client_id: int | None
    client_name: str | None = None
    organization_id: int | None
    organization_name: str | None = None
    assignee_id: int | None
    due_at: datetime | None
    remind_at: datetime | None
    reminded_at: datetime | None
    done_at: datetime | None
    result: str | None
    closed_by: int | None
    created_by: int | None
    call_id: int | None
    created_at: datetime
    overdue: bool = False


class MeetingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=255)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    place: str = Field(default="", max_length=255)
    client_id: int | None = None
    organization_id: int | None = None
    participant_ids: list[int] = Field(default_factory=list, max_length=50)
    """Contact persons taking part (the client, if given, always does)."""
    assignee_id: int | None = None
    remind_at: AwareDatetime | None = None
    call_id: int | None = None
    result: str | None = Field(default=None, max_length=_TEXT)
    """Given for a meeting that already took place: it is logged closed."""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


class MeetingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=255)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    place: str | None = Field(default=None, max_length=255)
    participant_ids: list[int] | None = Field(default=None, max_length=50)
    assignee_id: int | None = None
    remind_at: AwareDatetime | None = None


class Participant(BaseModel):
    id: int
    name: str


class MeetingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subject: str
    starts_at: datetime
    ends_at: datetime | None
    place: str
    client_id: int | None
    client_name: str | None = None
    organization_id: int | None
    organization_name: str | None = None
    participants: list[Participant] = Field(default_factory=list)
    assignee_id: int | None
    remind_at: datetime | None
    reminded_at: datetime | None
    done_at: datetime | None
    result: str | None
    closed_by: int | None
    created_by: int | None
    call_id: int | None
    created_at: datetime
    overdue: bool = False
