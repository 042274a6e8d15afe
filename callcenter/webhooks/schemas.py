"""The webhook's public payload, version 1, and its mapping to the domain's `CallEvent`s.

This is an external contract: senders are other people's systems. It changes only by adding
a version; the domain contract (`callcenter.events`) may evolve behind `to_call_event`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    CallTransferred,
    Direction,
    EndReason,
    Party,
    RecordingStarted,
    StopRingReason,
)

SCHEMA_VERSION: Literal[1] = 1
DOCUMENTED_MAX_EVENTS = 100
"""The default `webhook_max_events`, shown in the OpenAPI and AsyncAPI documents."""

Text = Annotated[str, Field(max_length=255)]
Number = Annotated[str, Field(max_length=64)]
Agent = Annotated[str, Field(min_length=1, max_length=128)]
QueueName = Annotated[str, Field(min_length=1, max_length=64)]


class _WebhookEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = SCHEMA_VERSION
    """The payload schema version; 1 is the only one so far."""
    id: str = Field(min_length=1, max_length=255)
    """The sender's id of this event, unique per PBX: a resent event changes nothing."""
    call_id: str = Field(min_length=1, max_length=128)
    """The sender's id of the whole call: every event of one call carries the same one."""
    at: AwareDatetime
    """When it happened, ISO 8601 with a UTC offset (`2026-11-29T10:15:00+03:00`)."""


class CallStartedV1(_WebhookEvent):
    type: Literal["call.started"]
    direction: Direction
    caller_number: Number = ""
    """The caller's number exactly as the PBX presents it (any format)."""
    caller_name: Text = ""
    called_number: Number = ""
    """The number dialled (a DID for inbound calls)."""


class CallQueuedV1(_WebhookEvent):
    type: Literal["call.queued"]
    queue: QueueName
    position: int | None = Field(default=None, ge=1, le=1_000_000)


class CallRingingV1(_WebhookEvent):
    type: Literal["call.ringing"]
    agent: Agent
    """The agent's extension or interface; users' extensions map it to an operator."""
    agent_name: Text = ""
    queue: QueueName | None = None


class CallRingingStoppedV1(_WebhookEvent):
    type: Literal["call.ringing_stopped"]
    agent: Agent
    reason: StopRingReason
    queue: QueueName | None = None


class CallAnsweredV1(_WebhookEvent):
    type: Literal["call.answered"]
    agent: Agent
    agent_name: Text = ""
    queue: QueueName | None = None


class CallTransferredV1(_WebhookEvent):
    type: Literal["call.transferred"]
    from_agent: Agent | None = None
    to_agent: Agent | None = None
    to_agent_name: Text = ""
    to_number: Number = ""


class CallRecordingStartedV1(_WebhookEvent):
    type: Literal["call.recording_started"]
    file: str = Field(min_length=1, max_length=1024)
    """The recording's file name relative to the recordings folder."""


class CallEndedV1(_WebhookEvent):
    type: Literal["call.ended"]
    reason: EndReason
    ended_by: Party | None = None


WebhookEvent = Annotated[
    CallStartedV1
    | CallQueuedV1
    | CallRingingV1
    | CallRingingStoppedV1
    | CallAnsweredV1
    | CallTransferredV1
    | CallRecordingStartedV1
    | CallEndedV1,
    Field(discriminator="type"),
]
webhook_event_adapter: TypeAdapter[WebhookEvent] = TypeAdapter(WebhookEvent)

EVENT_TYPES: tuple[str, ...] = (
    "call.started",
    "call.queued",
    "call.ringing",
    "call.ringing_stopped",
    "call.answered",
    "call.transferred",
    "call.recording_started",
    "call.ended",
)


class WebhookAccepted(BaseModel):
    """What a webhook request did: every event is stored once, whatever is resent."""

    received: int
    """Events in the request."""
    applied: int
    """Events seen for the first time and applied."""
    duplicates: int
    """Events already stored before (by `id`); they changed nothing."""


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        # The discriminator's mapping names `$defs`; `type`'s const tells the events apart.
        return {
            key: _inline(value, definitions)
            for key, value in node.items()
            if key != "discriminator"
        }
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def event_schema() -> dict[str, Any]:
    """The JSON Schema of one webhook event, self-contained (no `$ref`)."""
    schema = webhook_event_adapter.json_schema()
    definitions = schema.pop("$defs", {})
    inlined: dict[str, Any] = _inline(schema, definitions)
    return inlined


EXAMPLE_CALL: list[dict[str, Any]] = [
    {
        "id": "c42-1",
        "type": "call.started",
        "call_id": "c42",
        "at": "2026-11-29T10:15:00+03:00",
        "direction": "inbound",
        "caller_number": "+74951234567",
    },
    {
        "id": "c42-2",
        "type": "call.queued",
        "call_id": "c42",
        "at": "2026-11-29T10:15:01+03:00",
        "queue": "support",
    },
    {
        "id": "c42-3",
        "type": "call.ringing",
        "call_id": "c42",
        "at": "2026-11-29T10:15:02+03:00",
        "agent": "101",
        "queue": "support",
    },
    {
        "id": "c42-4",
        "type": "call.answered",
        "call_id": "c42",
        "at": "2026-11-29T10:15:05+03:00",
        "agent": "101",
        "queue": "support",
    },
    {
        "id": "c42-5",
        "type": "call.ended",
        "call_id": "c42",
        "at": "2026-11-29T10:15:40+03:00",
        "reason": "completed",
        "ended_by": "caller",
    },
]
"""A whole inbound call as one batch (docs/webhook.md; the OpenAPI example)."""


def request_body_schema(max_events: int) -> dict[str, Any]:
    """The JSON Schema of a request body: one event, or a batch (array) of them."""
    event = event_schema()
    batch = {"type": "array", "items": event, "minItems": 1, "maxItems": max_events}
    return {"title": "WebhookRequest", "anyOf": [event, batch]}


class _Envelope(TypedDict):
    pbx: str
    call_key: str
    event_id: str
    at: datetime


def to_call_event(pbx: str, event: WebhookEvent) -> CallEvent:
    """The domain event a webhook event reports (pure)."""
    base = _Envelope(
        pbx=pbx, call_key=event.call_id, event_id=event.id, at=event.at.astimezone(UTC)
    )
    match event:
        case CallStartedV1():
            return CallStarted(
                **base,
                direction=event.direction,
                caller_num=event.caller_number,
                caller_name=event.caller_name,
                callee_num=event.called_number,
            )
        case CallQueuedV1():
            return CallQueued(**base, queue=event.queue, position=event.position)
        case CallRingingV1():
            return AgentRinging(
                **base, agent=event.agent, agent_name=event.agent_name, queue=event.queue
            )
        case CallRingingStoppedV1():
            return AgentStoppedRinging(
                **base, agent=event.agent, reason=event.reason, queue=event.queue
            )
        case CallAnsweredV1():
            return CallAnswered(
                **base, agent=event.agent, agent_name=event.agent_name, queue=event.queue
            )
        case CallTransferredV1():
            return CallTransferred(
                **base,
                from_agent=event.from_agent,
                to_agent=event.to_agent,
                to_agent_name=event.to_agent_name,
                to_number=event.to_number,
            )
        case CallRecordingStartedV1():
            return RecordingStarted(**base, file=event.file)
        case CallEndedV1():
            return CallEnded(**base, reason=event.reason, ended_by=event.ended_by)
