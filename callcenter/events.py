"""The CallEvent contract: what any PBX adapter tells the domain about a call.

Adapters (AMI, HTTP webhook, cloud PBX) emit these; `callcenter.calls` applies them.
Every event carries `event_id`, unique per PBX for the real-world thing it reports, so
applying the same event twice changes nothing. `call_key` is the PBX's id of the whole call
(Asterisk: the Linkedid); `at` is when it happened at the PBX (UTC).

A second, smaller contract (`QueueEvent`, at the end) carries what queues say about their
members (added, removed, paused, device state) and callers, and the snapshot of all of it
taken after every (re)connect: facts about agents that are not facts about one call.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeGuard

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


# --- queue members and queue facts -------------------------------------------------------
#
# What a queue says about its members and callers, as opposed to what happens to one call.
# Same envelope rules as the call events: `event_id` is deterministic per PBX, `at` is PBX
# time (UTC). The live queue board (`callcenter.queues.live`) folds both kinds.


class DeviceState(StrEnum):
    """A queue member's device, as the PBX reports it (Asterisk's AST_DEVICE_* values)."""

    UNKNOWN = "unknown"
    NOT_IN_USE = "not_in_use"
    IN_USE = "in_use"
    BUSY = "busy"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"
    RINGING = "ringing"
    RING_IN_USE = "ring_in_use"
    ON_HOLD = "on_hold"


class _QueueEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pbx: str = "default"
    event_id: str = Field(min_length=1, max_length=255)
    at: datetime
    queue: str = Field(min_length=1, max_length=64)


class MemberView(BaseModel):
    """One member of one queue as the PBX shows it now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str = Field(min_length=1, max_length=64)
    interface: str = Field(min_length=1, max_length=128)
    """The member's interface (e.g. `Local/101@agents`): the same string call events name
    as `agent`."""
    name: str = Field(default="", max_length=255)
    device: DeviceState = DeviceState.UNKNOWN
    paused: bool = False
    pause_reason: str = Field(default="", max_length=255)
    paused_since: datetime | None = None
    """When the current pause began (the PBX's `LastPause`), if paused and known."""


class MemberAdded(_QueueEvent):
    kind: Literal["member_added"] = "member_added"
    member: MemberView


class MemberRemoved(_QueueEvent):
    kind: Literal["member_removed"] = "member_removed"
    interface: str = Field(min_length=1, max_length=128)


class MemberPaused(_QueueEvent):
    """A member was paused (with a reason) or unpaused in `queue`."""

    kind: Literal["member_paused"] = "member_paused"
    member: MemberView


class MemberStatus(_QueueEvent):
    """A member's device state changed (the event repeats its pause state too)."""

    kind: Literal["member_status"] = "member_status"
    member: MemberView


class CallerLeftQueue(_QueueEvent):
    """A caller left `queue` (answered, hung up or timed out): they no longer wait in it.

    How the call ended is the call events' business; this only says the waiting is over,
    which matters when the dialplan keeps the caller after the queue gives up."""

    kind: Literal["caller_left_queue"] = "caller_left_queue"
    call_key: str = Field(min_length=1, max_length=128)


class QueueParams(BaseModel):
    """A queue's own configuration as the PBX reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str = Field(min_length=1, max_length=64)
    strategy: str = Field(default="", max_length=32)
    service_level_s: int | None = None
    """The PBX's service-level threshold (Asterisk `servicelevel`); None when not set."""


class WaitingView(BaseModel):
    """A caller waiting in a queue at snapshot time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str = Field(min_length=1, max_length=64)
    call_key: str = Field(min_length=1, max_length=128)
    position: int | None = None


class QueueSnapshot(BaseModel):
    """Everything the PBX shows about its queues at one moment (after every (re)connect):
    it replaces what was believed about queue parameters, members and waiting callers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["queue_snapshot"] = "queue_snapshot"
    pbx: str = "default"
    event_id: str = Field(min_length=1, max_length=255)
    at: datetime
    queues: tuple[QueueParams, ...] = ()
    members: tuple[MemberView, ...] = ()
    waiting: tuple[WaitingView, ...] = ()


QueueEvent = Annotated[
    MemberAdded | MemberRemoved | MemberPaused | MemberStatus | CallerLeftQueue | QueueSnapshot,
    Field(discriminator="kind"),
]
queue_event_adapter: TypeAdapter[QueueEvent] = TypeAdapter(QueueEvent)

CALL_EVENT_TYPES = (
    CallStarted,
    CallQueued,
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallTransferred,
    RecordingStarted,
    CallEnded,
)
"""The CallEvent classes, for `isinstance` checks on a mixed stream."""

PbxEvent = CallEvent | QueueEvent
"""Anything an adapter reports, in PBX order."""


def is_call_event(event: PbxEvent) -> TypeGuard[CallEvent]:
    return isinstance(event, CALL_EVENT_TYPES)
