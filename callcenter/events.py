"""The CallEvent contract: what any PBX adapter tells the domain about a call.

Adapters (AMI, HTTP webhook, cloud PBX) emit these; `callcenter.calls` applies them.
Every event carries `event_id`, unique per PBX for the real-world thing it reports, so
applying the same event twice changes nothing. `call_key` is the PBX's id of the whole call
(Asterisk: the Linkedid); `at` is when it happened at the PBX (UTC).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class EndReason(StrEnum):
    """Why a call ended, as a supervisor would report it."""

    COMPLETED = "completed"
    """Answered by an agent and then hung up (see `ended_by`)."""
    ABANDONED = "abandoned"
    """The caller hung up while waiting in a queue."""
    QUEUE_TIMEOUT = "queue_timeout"
    """The queue gave up on the caller (timeout, no agents): the caller was not served."""
    CALLER_HANGUP = "caller_hangup"
    """The caller left before reaching a queue or an agent (IVR, greeting)."""
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


class StopRingReason(StrEnum):
    ANSWERED_HERE = "answered_here"
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    NO_ANSWER = "no_answer"
    CALLER_LEFT = "caller_left"
    BUSY = "busy"
    FAILED = "failed"
    TRANSFERRED = "transferred"
    """The agent handed the call on to someone else: their card is withdrawn."""


class Party(StrEnum):
    CALLER = "caller"
    AGENT = "agent"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pbx: str = "default"
    call_key: str = Field(min_length=1, max_length=128)
    event_id: str = Field(min_length=1, max_length=255)
    at: datetime


class CallStarted(_Event):
    kind: Literal["call_started"] = "call_started"
    direction: Direction
    caller_num: str = Field(default="", max_length=64)
    """Caller ID number exactly as the PBX presents it (not normalised)."""
    caller_name: str = Field(default="", max_length=255)
    callee_num: str = Field(default="", max_length=64)
    """The number dialled (a DID for inbound calls)."""


class CallQueued(_Event):
    kind: Literal["call_queued"] = "call_queued"
    queue: str
    position: int | None = None


class AgentRinging(_Event):
    kind: Literal["agent_ringing"] = "agent_ringing"
    agent: str
    """The agent's interface as the PBX names it (e.g. `Local/101@agents`, `PJSIP/101`)."""
    agent_name: str = ""
    queue: str | None = None


class AgentStoppedRinging(_Event):
    kind: Literal["agent_stopped_ringing"] = "agent_stopped_ringing"
    agent: str
    reason: StopRingReason
    queue: str | None = None


class CallAnswered(_Event):
    kind: Literal["call_answered"] = "call_answered"
    agent: str
    agent_name: str = ""
    queue: str | None = None


class CallTransferred(_Event):
    kind: Literal["call_transferred"] = "call_transferred"
    from_agent: str | None = None
    to_agent: str | None = None
    to_agent_name: str = ""
    to_number: str = ""


class RecordingStarted(_Event):
    kind: Literal["recording_started"] = "recording_started"
    file: str


class CallEnded(_Event):
    kind: Literal["call_ended"] = "call_ended"
    reason: EndReason
    ended_by: Party | None = None


CallEvent = Annotated[
    CallStarted
    | CallQueued
    | AgentRinging
    | AgentStoppedRinging
    | CallAnswered
    | CallTransferred
    | RecordingStarted
    | CallEnded,
    Field(discriminator="kind"),
]

call_event_adapter: TypeAdapter[CallEvent] = TypeAdapter(CallEvent)
