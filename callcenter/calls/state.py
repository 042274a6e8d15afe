"""The pure call state machine: `apply(call, event) -> (call, effects)`.

No I/O here. Persisting the call and publishing the effects happen around it, in
`callcenter.calls.service`. Events of different channels can arrive out of order, so
every transition is monotone: a call never goes back to an earlier status, a time once
set is never moved later, and anything that arrives after the end only fills gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

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


class CallStatus(StrEnum):
    NEW = "new"
    QUEUED = "queued"
    ANSWERED = "answered"
    ENDED = "ended"


_RANK = {CallStatus.NEW: 0, CallStatus.QUEUED: 1, CallStatus.ANSWERED: 2, CallStatus.ENDED: 3}


@dataclass(frozen=True, slots=True)
class CallState:
    pbx: str
    call_key: str
    direction: Direction = Direction.INBOUND
    caller_num: str = ""
    caller_name: str = ""
    callee_num: str = ""
    status: CallStatus = CallStatus.NEW
    queue: str | None = None
    agent: str | None = None
    agent_name: str = ""
    ringing_agents: frozenset[str] = field(default_factory=frozenset)
    started_at: datetime | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    ended_by: Party | None = None
    recording: str | None = None

    @property
    def wait_seconds(self) -> float | None:
        """Time in queue until an agent answered or the caller left the queue."""
        if self.queued_at is None:
            return None
        until = self.answered_at or self.ended_at
        return None if until is None else max(0.0, (until - self.queued_at).total_seconds())

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.answered_at).total_seconds())


@dataclass(frozen=True, slots=True)
class RingStarted:
    """An agent's phone rings with this call: pop the card on that agent's screens."""

    agent: str


@dataclass(frozen=True, slots=True)
class RingStopped:
    """An agent's phone stopped ringing without that agent taking the call: withdraw the card."""

    agent: str
    reason: StopRingReason


@dataclass(frozen=True, slots=True)
class Connected:
    """The agent took the call: the card shows connected and a timer."""

    agent: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The call ended: the answering agent is asked for the outcome; jobs may run."""

    agent: str | None


Effect = RingStarted | RingStopped | Connected | Finished


def _earliest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


def _advance(status: CallStatus, to: CallStatus) -> CallStatus:
    return to if _RANK[to] > _RANK[status] else status


def new_call(event: CallEvent) -> CallState:
    """The call as known before any event: only its identity and first sighting."""
    return CallState(pbx=event.pbx, call_key=event.call_key, started_at=event.at)


def apply(call: CallState | None, event: CallEvent) -> tuple[CallState, list[Effect]]:
    """The call after `event`, and what the outside world must be told."""
    current = call if call is not None else new_call(event)
    current = replace(current, started_at=_earliest(current.started_at, event.at))
    match event:
        case CallStarted():
            return _on_started(current, event), []
        case CallQueued():
            return _on_queued(current, event), []
        case AgentRinging():
            return _on_ringing(current, event)
        case AgentStoppedRinging():
            return _on_stopped_ringing(current, event)
        case CallAnswered():
            return _on_answered(current, event)
        case CallTransferred():
            return _on_transferred(current, event)
        case RecordingStarted():
            return replace(current, recording=current.recording or event.file), []
        case CallEnded():
            return _on_ended(current, event)


def _on_started(call: CallState, event: CallStarted) -> CallState:
    return replace(
        call,
        direction=event.direction,
        caller_num=call.caller_num or event.caller_num,
        caller_name=call.caller_name or event.caller_name,
        callee_num=call.callee_num or event.callee_num,
    )


def _on_queued(call: CallState, event: CallQueued) -> CallState:
    if call.queued_at is not None and call.queue == event.queue:
        return call
    return replace(
        call,
        queue=event.queue,
        queued_at=_earliest(call.queued_at, event.at),
        status=_advance(call.status, CallStatus.QUEUED),
    )


def _on_ringing(call: CallState, event: AgentRinging) -> tuple[CallState, list[Effect]]:
    if call.status in (CallStatus.ANSWERED, CallStatus.ENDED) or event.agent in call.ringing_agents:
        return call, []
    updated = replace(
        call,
        ringing_agents=call.ringing_agents | {event.agent},
        queue=call.queue or event.queue,
    )
    return updated, [RingStarted(event.agent)]


def _on_stopped_ringing(
    call: CallState, event: AgentStoppedRinging
) -> tuple[CallState, list[Effect]]:
    if event.agent not in call.ringing_agents:
        return call, []
    updated = replace(call, ringing_agents=call.ringing_agents - {event.agent})
    if event.reason is StopRingReason.ANSWERED_HERE:
        return updated, []
    return updated, [RingStopped(event.agent, event.reason)]


def _on_answered(call: CallState, event: CallAnswered) -> tuple[CallState, list[Effect]]:
    if call.answered_at is not None:
        return call, []
    others = call.ringing_agents - {event.agent}
    updated = replace(
        call,
        status=_advance(call.status, CallStatus.ANSWERED),
        agent=event.agent,
        agent_name=event.agent_name or call.agent_name,
        queue=call.queue or event.queue,
        answered_at=event.at,
        ringing_agents=frozenset(),
    )
    if call.status is CallStatus.ENDED:
        # The answer arrived after the hangup (events of other channels came first).
        return replace(updated, end_reason=EndReason.COMPLETED), []
    effects: list[Effect] = [
        RingStopped(a, StopRingReason.ANSWERED_ELSEWHERE) for a in sorted(others)
    ]
    effects.append(Connected(event.agent))
    return updated, effects


def _on_transferred(call: CallState, event: CallTransferred) -> tuple[CallState, list[Effect]]:
    if event.to_agent is None or event.to_agent == call.agent:
        return call, []
    updated = replace(call, agent=event.to_agent, agent_name=event.to_agent_name)
    if call.status is CallStatus.ENDED:
        return updated, []
    effects: list[Effect] = [Connected(event.to_agent)]
    if call.agent is not None:
        effects.insert(0, RingStopped(call.agent, StopRingReason.TRANSFERRED))
    return updated, effects


def _on_ended(call: CallState, event: CallEnded) -> tuple[CallState, list[Effect]]:
    if call.status is CallStatus.ENDED:
        return call, []
    reason = EndReason.COMPLETED if call.answered_at is not None else event.reason
    updated = replace(
        call,
        status=CallStatus.ENDED,
        ended_at=event.at,
        end_reason=reason,
        ended_by=event.ended_by,
        ringing_agents=frozenset(),
    )
    ring_reason = (
        StopRingReason.CALLER_LEFT if event.ended_by is not Party.AGENT else StopRingReason.FAILED
    )
    effects: list[Effect] = [RingStopped(a, ring_reason) for a in sorted(call.ringing_agents)]
    effects.append(Finished(call.agent))
    return updated, effects
