"""Pure translation of Asterisk AMI event frames into the domain's typed call events.

`translate(state, frame, pbx=..., arrival=...)` returns the next `TranslatorState` and the
`CallEvent`s the frame means; `translate_queue(state, frame, ...)` the `QueueEvent`s (queue
members, callers leaving a queue) it means. No I/O, no clock: times come from the frame's
`Timestamp` header (`timestampevents = yes`, epoch seconds, UTC), else from `arrival`.

Rules, as seen on real Asterisk 20 streams (`tests/fixtures/ami/`):

- A call is keyed on `Linkedid`. It starts at the first non-Local channel of a linkedid;
  Local channels (`Local/...;1`/`;2`, e.g. queue members `Local/101@agents`) never start,
  and never end, a call: a Local-only linkedid is not a call.
- Direction: a channel is a *trunk* when its name starts with one of
  `TranslatorConfig.trunk_prefixes` or its `Newchannel` context is one of
  `trunk_contexts`. A call whose first channel is a trunk channel and the oldest channel of
  the linkedid is inbound; one whose first non-Local channel is a trunk channel dialled by a
  Local channel (an originate) is outbound; otherwise it is internal, and becomes outbound
  when a trunk channel joins it.
- The call ends when its inbound trunk channel hangs up, or (other directions) when its
  last non-Local channel hangs up. End reason, decided from the frames of the call's own
  channels: answered (AgentConnect, or DialEnd ANSWER of a direct Dial) → completed; else
  the last stage the caller went through: in a queue → abandoned, unless the queue gave up
  (QUEUESTATUS TIMEOUT/LEAVEEMPTY/..., or a QueueCallerAbandon/Leave that was not preceded
  by a hangup request on the caller's channel) → queue_timeout; a direct Dial that ended
  NOANSWER/BUSY/CANCEL/... → no_answer/busy/caller_hangup/failed; nothing → from the
  Hangup cause (17 busy, 18/19 no answer, network causes failed, else caller_hangup).
- `ended_by` of a completed call: AgentComplete's `Reason` (`caller`/`agent`); without it,
  which side hung up first as the caller's own channel saw it: a hangup request while it
  was still bridged means it hung up itself, leaving the bridge first means the peer did.
  Both are per-channel facts, so the answer does not depend on cross-channel order.
- Event ids are deterministic: `<uniqueid>:<AMI event>:<Timestamp>:<kind>[:<discriminator>]`
  for per-frame events (the discriminator is the dialled leg's uniqueid where several legs
  ring at once); `<linkedid>:call_started` and `<linkedid>:call_ended` for the once-per-call
  events, so a call is started and ended once however the frames arrive. Without a
  `Timestamp`, a digest of the whole frame stands in for it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TypeVar

import immutables

from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallerLeftQueue,
    CallEvent,
    CallQueued,
    CallStarted,
    CallTransferred,
    DeviceState,
    Direction,
    EndReason,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
    MemberStatus,
    MemberView,
    Party,
    QueueEvent,
    RecordingStarted,
    StopRingReason,
)
from pbx_adapter.frames import EventFilter

LOCAL_PREFIX = "Local/"
MAX_CALL_KEY = 128
MAX_EVENT_ID = 255

QUEUE_GAVE_UP = frozenset(
    {"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"}
)
"""QUEUESTATUS values that mean the queue did not serve the caller."""

_DIAL_OUTCOME: Mapping[str, EndReason] = {
    "NOANSWER": EndReason.NO_ANSWER,
    "BUSY": EndReason.BUSY,
    "CANCEL": EndReason.CALLER_HANGUP,
}
_RING_STOP: Mapping[str, StopRingReason] = {
    "NOANSWER": StopRingReason.NO_ANSWER,
    "BUSY": StopRingReason.BUSY,
    "CANCEL": StopRingReason.CALLER_LEFT,
}
_CAUSE_OUTCOME: Mapping[str, EndReason] = {
    "17": EndReason.BUSY,
    "18": EndReason.NO_ANSWER,
    "19": EndReason.NO_ANSWER,
    **{
        cause: EndReason.FAILED
        for cause in ("1", "3", "21", "27", "28", "34", "38", "41", "42", "44", "58")
    },
}
_V = TypeVar("_V")
_UNKNOWN = frozenset({"<unknown>", "<Unknown>"})
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]{8}(?:;\d)?$")


@dataclass(frozen=True, slots=True)
class TranslatorConfig:
    """What translation must be told about the PBX. The defaults fit the lab PBX and common
    setups; a deployment with e.g. PJSIP trunks adds `"PJSIP/provider-"` to the prefixes or
    its inbound context to `trunk_contexts`."""

    trunk_prefixes: tuple[str, ...] = ("IAX2/", "DAHDI/")
    trunk_contexts: tuple[str, ...] = (
        "trunk-in",
        "from-trunk",
        "from-pstn",
        "from-external",
        "from-did",
    )

    def is_trunk(self, channel: str, context: str = "") -> bool:
        """True for a channel to or from the outside world."""
        if channel.startswith(LOCAL_PREFIX):
            return False
        return channel.startswith(self.trunk_prefixes) or (
            bool(context) and context in self.trunk_contexts
        )


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One live channel leg (keyed on its Uniqueid)."""

    uniqueid: str
    linkedid: str
    name: str
    local: bool = False
    trunk: bool = False
    bridged: bool = False
    hangup_requested: bool = False
    self_released: bool | None = None
    """Who ended this leg's last talk: True if it hung up while bridged, False if the bridge
    let it go first (the peer hung up), None if not known."""
    recording_file: str = ""


@dataclass(frozen=True, slots=True)
class CallTrack:
    """What translation remembers about one open call (keyed on its Linkedid)."""

    call_key: str
    anchor: str
    """Uniqueid of the channel that started the call (the caller's channel when inbound)."""
    direction: Direction
    live: frozenset[str] = frozenset()
    """Uniqueids of the call's live non-Local channels."""
    queue: str | None = None
    in_queue: bool = False
    abandon_seen: bool = False
    member_answered: str = ""
    """The queue member whose leg answered in the current queue attempt (the others are
    cancelled); the queue reports the connection (AgentConnect) right after."""
    outcome: EndReason | None = None
    """How the call ends if nobody answers, as far as known now."""
    answered: bool = False
    ended_by: Party | None = None
    ringing: Mapping[str, str] = field(default_factory=dict)
    """Dialled leg Uniqueid → agent interface, for the legs that ring now."""
    queue_legs: frozenset[str] = frozenset()
    """Uniqueids of the legs a queue dialled (their DialEnds are the queue's business)."""


@dataclass(frozen=True, slots=True)
class TranslatorState:
    """Everything translation needs between frames. Treat it as a value: never mutate it."""

    config: TranslatorConfig = field(default_factory=TranslatorConfig)
    channels: Mapping[str, ChannelInfo] = field(default_factory=immutables.Map)
    calls: Mapping[str, CallTrack] = field(default_factory=immutables.Map)
    agent_names: Mapping[str, str] = field(default_factory=immutables.Map)
    """Agent interface → member name, learned from queue events or given at start."""


@dataclass(frozen=True, slots=True)
class _Frame:
    raw: Mapping[str, str]
    event: str
    pbx: str
    at: datetime
    stamp: str
    uniqueid: str
    linkedid: str
    channel: str

    def get(self, key: str) -> str:
        return self.raw.get(key, "")


Result = tuple[TranslatorState, list[CallEvent]]
_Handler = Callable[[TranslatorState, _Frame], Result]


def translate(
    state: TranslatorState, frame: Mapping[str, str], *, pbx: str, arrival: datetime
) -> Result:
    """The state after `frame`, and the call events it means (often none)."""
    event = frame.get("Event", "")
    handler = _HANDLERS.get(event)
    if handler is None:
        return state, []
    uniqueid = frame.get("Uniqueid", "")
    known = state.channels.get(uniqueid)
    linkedid = frame.get("Linkedid", "") or (known.linkedid if known else "")
    parsed = _Frame(
        raw=frame,
        event=event,
        pbx=pbx,
        at=frame_time(frame, arrival),
        stamp=_stamp(frame),
        uniqueid=uniqueid,
        linkedid=linkedid,
        channel=frame.get("Channel", "") or (known.name if known else ""),
    )
    if known is None and uniqueid and parsed.channel and event != "Newchannel":
        # The channel's first frames were lost (a link outage): whatever frame of it comes
        # first makes it known, so a call seen only by its tail still becomes a record.
        state, sighted = _sight(state, parsed)
        state, events = handler(state, parsed)
        return state, [*sighted, *events]
    return handler(state, parsed)


def frame_time(frame: Mapping[str, str], arrival: datetime) -> datetime:
    """When the frame's event happened: its `Timestamp` header, else when it arrived."""
    raw = frame.get("Timestamp", "")
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            return arrival
        if math.isfinite(seconds):
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                return arrival
    return arrival


def interface_of(channel: str) -> str:
    """The device a channel belongs to: `Local/101@agents-0000001a;1` → `Local/101@agents`."""
    return _CHANNEL_SUFFIX.sub("", channel)


def valid_call_key(key: str) -> bool:
    return 0 < len(key) <= MAX_CALL_KEY


def clean(value: str, limit: int) -> str:
    """A caller-ID style value without Asterisk's `<unknown>` placeholder, cut to `limit`."""
    return "" if value in _UNKNOWN else value[:limit]


def callee_of(exten: str) -> str:
    """The number dialled, from a channel's extension (`s`, the start extension, is none)."""
    return "" if exten == "s" else clean(exten, 64)


def bounded_id(text: str) -> str:
    """`text` as an event id: itself if short enough, else a digest of it."""
    if len(text) <= MAX_EVENT_ID:
        return text
    return "h:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def started_event_id(call_key: str) -> str:
    return bounded_id(f"{call_key}:call_started")


def _stamp(frame: Mapping[str, str]) -> str:
    stamp = frame.get("Timestamp", "")
    if stamp and len(stamp) <= 40:
        return stamp
    material = "\n".join(f"{k}\x00{v}" for k, v in sorted(frame.items()))
    return "d" + hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _event_id(f: _Frame, kind: str, discriminator: str = "") -> str:
    text = f"{f.uniqueid or f.linkedid}:{f.event}:{f.stamp}:{kind}"
    return bounded_id(f"{text}:{discriminator}" if discriminator else text)


def _with_channel(state: TranslatorState, info: ChannelInfo) -> TranslatorState:
    return replace(state, channels=_with(state.channels, info.uniqueid, info))


def _with_call(state: TranslatorState, track: CallTrack) -> TranslatorState:
    return replace(state, calls=_with(state.calls, track.call_key, track))


def _with(mapping: Mapping[str, _V], key: str, value: _V) -> immutables.Map[str, _V]:
    """`mapping` and `key: value`, sharing the rest (a persistent map: a frame costs
    O(log n), not a copy of every live channel)."""
    return _persistent(mapping).set(key, value)


def _without(mapping: Mapping[str, _V], key: str) -> immutables.Map[str, _V]:
    return _persistent(mapping).delete(key) if key in mapping else _persistent(mapping)


def _persistent(mapping: Mapping[str, _V]) -> immutables.Map[str, _V]:
    return mapping if isinstance(mapping, immutables.Map) else immutables.Map(mapping)


def _learn_name(state: TranslatorState, interface: str, name: str) -> TranslatorState:
    if not interface or not name or state.agent_names.get(interface) == name:
        return state
    return replace(state, agent_names=_with(state.agent_names, interface, name))


def _position(raw: str) -> int | None:
    if not raw or len(raw) > 9:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


# --- channels and calls ----------------------------------------------------------------


def _sight(state: TranslatorState, f: _Frame) -> Result:
    """A channel seen for the first time: remember it; the first non-Local one starts a call."""
    uid, lid, name = f.uniqueid, f.linkedid or f.uniqueid, f.channel
    if not uid or not valid_call_key(lid):
        return state, []
    info = state.channels.get(uid)
    if info is None:
        local = name.startswith(LOCAL_PREFIX)
        trunk = state.config.is_trunk(name, f.get("Context"))
        info = ChannelInfo(uniqueid=uid, linkedid=lid, name=name, local=local, trunk=trunk)
        state = _with_channel(state, info)
    if info.local:
        return state, []
    track = state.calls.get(info.linkedid)
    if track is None:
        if info.trunk:
            direction = Direction.INBOUND if uid == info.linkedid else Direction.OUTBOUND
        else:
            direction = Direction.INTERNAL
        track = CallTrack(
            call_key=info.linkedid, anchor=uid, direction=direction, live=frozenset({uid})
        )
        started = CallStarted(
            pbx=f.pbx,
            call_key=info.linkedid,
            event_id=started_event_id(info.linkedid),
            at=f.at,
            direction=direction,
            caller_num=clean(f.get("CallerIDNum"), 64),
            caller_name=clean(f.get("CallerIDName"), 255),
            callee_num=callee_of(f.get("Exten")),
        )
        return _with_call(state, track), [started]
    if uid in track.live:
        return state, []
    track = replace(track, live=track.live | {uid})
    events: list[CallEvent] = []
    if info.trunk and track.direction is Direction.INTERNAL:
        track = replace(track, direction=Direction.OUTBOUND)
        events.append(
            CallStarted(
                pbx=f.pbx,
                call_key=track.call_key,
                event_id=bounded_id(f"{track.call_key}:call_started:outbound"),
                at=f.at,
                direction=Direction.OUTBOUND,
                callee_num=callee_of(f.get("Exten")),
            )
        )
    return _with_call(state, track), events


def _call_of(
    state: TranslatorState, f: _Frame
) -> tuple[TranslatorState, CallTrack | None, list[CallEvent]]:
    """The open call a frame of a non-Local channel belongs to.

    A frame of a call's first channel that was never seen (the adapter started mid-call
    without a resync) starts tracking the call from that frame.
    """
    track = state.calls.get(f.linkedid)
    if track is not None:
        return state, track, []
    if f.uniqueid and f.uniqueid == f.linkedid and not f.channel.startswith(LOCAL_PREFIX):
        state, events = _sight(state, f)
        return state, state.calls.get(f.linkedid), events
    return state, None, []


def _on_newchannel(state: TranslatorState, f: _Frame) -> Result:
    return _sight(state, f)


def _on_hangup(state: TranslatorState, f: _Frame) -> Result:
    info = state.channels.get(f.uniqueid)
    if info is None:
        return state, []
    state = replace(state, channels=_without(state.channels, f.uniqueid))
    track = state.calls.get(info.linkedid)
    if info.local or track is None:
        return state, []
    live = track.live - {info.uniqueid}
    ended_by = track.ended_by
    if info.uniqueid == track.anchor and track.answered and ended_by is None:
        ended_by = _released_party(info)
    finished = not live or (info.uniqueid == track.anchor and track.direction is Direction.INBOUND)
    if not finished:
        return _with_call(state, replace(track, live=live, ended_by=ended_by)), []
    if track.answered:
        reason = EndReason.COMPLETED
    else:
        reason = track.outcome or _CAUSE_OUTCOME.get(f.get("Cause"), EndReason.CALLER_HANGUP)
        ended_by = None
    ended = CallEnded(
        pbx=f.pbx,
        call_key=track.call_key,
        event_id=bounded_id(f"{track.call_key}:call_ended"),
        at=f.at,
        reason=reason,
        ended_by=ended_by,
    )
    return replace(state, calls=_without(state.calls, track.call_key)), [ended]


def _released_party(info: ChannelInfo) -> Party | None:
    """Which side ended the talk, from what the anchor channel itself saw."""
    if info.self_released is None:
        return None
    own_side = Party.CALLER if info.trunk else Party.AGENT
    other_side = Party.AGENT if info.trunk else Party.CALLER
    return own_side if info.self_released else other_side


def _on_hangup_request(state: TranslatorState, f: _Frame) -> Result:
    info = state.channels.get(f.uniqueid)
    if info is None or info.local or info.hangup_requested:
        return state, []
    released = info.self_released
    if info.bridged and released is None:
        released = True
    return _with_channel(state, replace(info, hangup_requested=True, self_released=released)), []


def _on_bridge_enter(state: TranslatorState, f: _Frame) -> Result:
    info = state.channels.get(f.uniqueid)
    if info is None or info.local or (info.bridged and info.self_released is None):
        return state, []
    return _with_channel(state, replace(info, bridged=True, self_released=None)), []


def _on_bridge_leave(state: TranslatorState, f: _Frame) -> Result:
    info = state.channels.get(f.uniqueid)
    if info is None or info.local or not info.bridged:
        return state, []
    released = info.self_released
    if released is None and not info.hangup_requested:
        released = False
    return _with_channel(state, replace(info, bridged=False, self_released=released)), []


# --- queues ------------------------------------------------------------------------------


def _on_queue_join(state: TranslatorState, f: _Frame) -> Result:
    state, track, events = _call_of(state, f)
    queue = f.get("Queue")
    if track is None or not queue:
        return state, events
    track = replace(
        track,
        queue=queue,
        in_queue=True,
        abandon_seen=False,
        member_answered="",
        outcome=EndReason.ABANDONED,
    )
    events.append(
        CallQueued(
            pbx=f.pbx,
            call_key=track.call_key,
            event_id=_event_id(f, "queued", queue),
            at=f.at,
            queue=queue,
            position=_position(f.get("Position")),
        )
    )
    return _with_call(state, track), events


def _on_queue_abandon(state: TranslatorState, f: _Frame) -> Result:
    track = state.calls.get(f.linkedid)
    if track is None:
        return state, []
    info = state.channels.get(f.uniqueid)
    # Asterisk also reports a caller the queue timed out as abandoned; a caller who really
    # hung up has a hangup request on their channel before this event.
    caller_hung_up = info is None or info.hangup_requested
    outcome = EndReason.ABANDONED if caller_hung_up else EndReason.QUEUE_TIMEOUT
    return _with_call(state, replace(track, abandon_seen=True, outcome=outcome)), []


def _on_queue_leave(state: TranslatorState, f: _Frame) -> Result:
    track = state.calls.get(f.linkedid)
    if track is None or not track.in_queue:
        return state, []
    outcome = track.outcome if track.abandon_seen else EndReason.QUEUE_TIMEOUT
    return _with_call(state, replace(track, in_queue=False, outcome=outcome)), []


def _on_agent_called(state: TranslatorState, f: _Frame) -> Result:
    state, track, events = _call_of(state, f)
    agent = f.get("Interface") or interface_of(f.get("DestChannel"))
    if track is None or not agent:
        return state, events
    name = f.get("MemberName")
    state = _learn_name(state, agent, name)
    leg = f.get("DestUniqueid")
    if leg:
        track = replace(
            track, ringing={**track.ringing, leg: agent}, queue_legs=track.queue_legs | {leg}
        )
    events.append(
        AgentRinging(
            pbx=f.pbx,
            call_key=track.call_key,
            event_id=_event_id(f, "ringing", leg or agent),
            at=f.at,
            agent=agent,
            agent_name=name or state.agent_names.get(agent, ""),
            queue=f.get("Queue") or track.queue,
        )
    )
    return _with_call(state, track), events


def _on_agent_ring_no_answer(state: TranslatorState, f: _Frame) -> Result:
    track = state.calls.get(f.linkedid)
    leg = f.get("DestUniqueid")
    if track is None:
        return state, []
    agent = f.get("Interface") or track.ringing.get(leg, "")
    if not agent:
        return state, []
    state = _learn_name(state, agent, f.get("MemberName"))
    stopped = AgentStoppedRinging(
        pbx=f.pbx,
        call_key=track.call_key,
        event_id=_event_id(f, "ring_stopped", leg or agent),
        at=f.at,
        agent=agent,
        reason=StopRingReason.NO_ANSWER,
        queue=f.get("Queue") or track.queue,
    )
    ringing = {k: v for k, v in track.ringing.items() if k != leg}
    return _with_call(state, replace(track, ringing=ringing)), [stopped]


def _on_agent_connect(state: TranslatorState, f: _Frame) -> Result:
    state, track, events = _call_of(state, f)
    agent = f.get("Interface") or interface_of(f.get("DestChannel"))
    if track is None or not agent:
        return state, events
    name = f.get("MemberName")
    state = _learn_name(state, agent, name)
    events.append(
        CallAnswered(
            pbx=f.pbx,
            call_key=track.call_key,
            event_id=_event_id(f, "answered", f.get("DestUniqueid")),
            at=f.at,
            agent=agent,
            agent_name=name or state.agent_names.get(agent, ""),
            queue=f.get("Queue") or track.queue,
        )
    )
    track = replace(track, answered=True, ringing={}, in_queue=False, ended_by=None)
    return _with_call(state, track), events


def _on_agent_complete(state: TranslatorState, f: _Frame) -> Result:
    state = _learn_name(state, f.get("Interface"), f.get("MemberName"))
    track = state.calls.get(f.linkedid)
    if track is None:
        return state, []
    reason = f.get("Reason").lower()
    party = {"caller": Party.CALLER, "agent": Party.AGENT}.get(reason)
    if party is None or track.ended_by is party:
        return state, []
    return _with_call(state, replace(track, ended_by=party)), []


def _on_queue_member(state: TranslatorState, f: _Frame) -> Result:
    interface = f.get("Interface") or f.get("Location")
    return _learn_name(state, interface, f.get("MemberName") or f.get("Name")), []


# --- direct dials ------------------------------------------------------------------------


def _on_dial_begin(state: TranslatorState, f: _Frame) -> Result:
    if f.channel.startswith(LOCAL_PREFIX):
        return state, []
    state, track, events = _call_of(state, f)
    leg, dest = f.get("DestUniqueid"), f.get("DestChannel")
    if track is None or track.answered or not leg or not dest:
        return state, events
    if track.in_queue:
        if leg in track.queue_legs:
            return state, events
        # AgentCalled names the member; without it, the dialled device does.
        track = replace(
            track,
            ringing={**track.ringing, leg: interface_of(dest)},
            queue_legs=track.queue_legs | {leg},
        )
        return _with_call(state, track), events
    if state.config.is_trunk(dest):
        return state, events
    agent = interface_of(dest)
    track = replace(track, ringing={**track.ringing, leg: agent})
    events.append(
        AgentRinging(
            pbx=f.pbx,
            call_key=track.call_key,
            event_id=_event_id(f, "ringing", leg),
            at=f.at,
            agent=agent,
            agent_name=state.agent_names.get(agent, ""),
        )
    )
    return _with_call(state, track), events


def _on_dial_end(state: TranslatorState, f: _Frame) -> Result:
    if f.channel.startswith(LOCAL_PREFIX):
        return state, []
    track = state.calls.get(f.linkedid)
    leg, dest = f.get("DestUniqueid"), f.get("DestChannel")
    if track is None or not (leg or dest):
        return state, []
    status = f.get("DialStatus").upper()
    agent = track.ringing.get(leg) or interface_of(dest)
    ringing = {k: v for k, v in track.ringing.items() if k != leg}
    if track.in_queue or leg in track.queue_legs:
        if status == "ANSWER":
            track = replace(track, member_answered=agent, ringing=ringing)
            return _with_call(state, track), []
        reason = (
            StopRingReason.ANSWERED_ELSEWHERE
            if status == "CANCEL" and track.member_answered and track.member_answered != agent
            else _RING_STOP.get(status, StopRingReason.FAILED)
        )
        queue = track.queue
        return _stop_ringing(state, f, replace(track, ringing=ringing), agent, reason, queue)
    if state.config.is_trunk(dest):
        return _dial_out_end(state, f, replace(track, ringing=ringing), status)
    if not agent:
        return state, []
    if status == "ANSWER":
        if track.answered:
            return state, []
        answered = CallAnswered(
            pbx=f.pbx,
            call_key=track.call_key,
            event_id=_event_id(f, "answered", leg),
            at=f.at,
            agent=agent,
            agent_name=state.agent_names.get(agent, ""),
        )
        track = replace(track, answered=True, ringing={}, ended_by=None)
        return _with_call(state, track), [answered]
    if track.answered:
        reason = StopRingReason.ANSWERED_ELSEWHERE
    else:
        reason = _RING_STOP.get(status, StopRingReason.FAILED)
        track = replace(track, outcome=_DIAL_OUTCOME.get(status, EndReason.FAILED))
    return _stop_ringing(state, f, replace(track, ringing=ringing), agent, reason, None)


def _dial_out_end(state: TranslatorState, f: _Frame, track: CallTrack, status: str) -> Result:
    """A dial to the outside world ended: the customer answered, or did not."""
    if status != "ANSWER":
        if track.answered:
            return _with_call(state, track), []
        outcome = _DIAL_OUTCOME.get(status, EndReason.FAILED)
        return _with_call(state, replace(track, outcome=outcome)), []
    if track.answered:
        return state, []
    anchor = state.channels.get(track.anchor)
    agent = interface_of(anchor.name) if anchor is not None and not anchor.trunk else ""
    track = replace(track, answered=True, ended_by=None)
    if not agent:
        return _with_call(state, track), []
    answered = CallAnswered(
        pbx=f.pbx,
        call_key=track.call_key,
        event_id=_event_id(f, "answered", f.get("DestUniqueid")),
        at=f.at,
        agent=agent,
        agent_name=state.agent_names.get(agent, ""),
    )
    return _with_call(state, track), [answered]


def _stop_ringing(
    state: TranslatorState,
    f: _Frame,
    track: CallTrack,
    agent: str,
    reason: StopRingReason,
    queue: str | None,
) -> Result:
    stopped = AgentStoppedRinging(
        pbx=f.pbx,
        call_key=track.call_key,
        event_id=_event_id(f, "ring_stopped", f.get("DestUniqueid") or agent),
        at=f.at,
        agent=agent,
        reason=reason,
        queue=queue,
    )
    return _with_call(state, track), [stopped]


# --- variables, recordings, transfers ----------------------------------------------------


RECORDING_VARIABLE = "MIXMONITOR_FILENAME"
QUEUE_STATUS_VARIABLE = "QUEUESTATUS"


def _on_var_set(state: TranslatorState, f: _Frame) -> Result:
    variable = f.get("Variable")
    if variable == RECORDING_VARIABLE:
        info = state.channels.get(f.uniqueid)
        value = f.get("Value")
        if info is None or not value or info.recording_file == value:
            return state, []
        return _with_channel(state, replace(info, recording_file=value)), []
    if variable == QUEUE_STATUS_VARIABLE and f.get("Value").upper() in QUEUE_GAVE_UP:
        track = state.calls.get(f.linkedid)
        if track is None or track.outcome is EndReason.QUEUE_TIMEOUT:
            return state, []
        return _with_call(state, replace(track, outcome=EndReason.QUEUE_TIMEOUT)), []
    return state, []


def _on_mixmonitor_start(state: TranslatorState, f: _Frame) -> Result:
    state, track, events = _call_of(state, f)
    if track is None:
        return state, events
    info = state.channels.get(f.uniqueid)
    path = info.recording_file if info is not None else ""
    name = PurePosixPath(path).name if path else ""
    file = name or (f"{f.uniqueid}.wav" if f.uniqueid else "")
    if not file:
        return state, events
    events.append(
        RecordingStarted(
            pbx=f.pbx,
            call_key=track.call_key,
            event_id=_event_id(f, "recording"),
            at=f.at,
            file=file,
        )
    )
    return state, events


def _agent_of(state: TranslatorState, channel: str) -> str | None:
    """The agent interface of a channel, or None for a trunk (the customer) or nothing."""
    if not channel or state.config.is_trunk(channel):
        return None
    return interface_of(channel)


def _transfer_track(state: TranslatorState, f: _Frame, *prefixes: str) -> CallTrack | None:
    for prefix in prefixes:
        track = state.calls.get(f.get(f"{prefix}Linkedid"))
        if track is not None:
            return track
    return None


def _on_blind_transfer(state: TranslatorState, f: _Frame) -> Result:
    if f.get("Result") != "Success":
        return state, []
    track = _transfer_track(state, f, "Transferee", "Transferer")
    if track is None:
        return state, []
    transferred = CallTransferred(
        pbx=f.pbx,
        call_key=track.call_key,
        event_id=_transfer_id(f, track),
        at=f.at,
        from_agent=_agent_of(state, f.get("TransfererChannel")),
        to_number=f.get("Extension")[:64],
    )
    return state, [transferred]


def _on_attended_transfer(state: TranslatorState, f: _Frame) -> Result:
    if f.get("Result") != "Success":
        return state, []
    track = _transfer_track(state, f, "Transferee", "OrigTransferer", "SecondTransferer")
    if track is None:
        return state, []
    to_agent = _agent_of(state, f.get("TransferTargetChannel"))
    transferred = CallTransferred(
        pbx=f.pbx,
        call_key=track.call_key,
        event_id=_transfer_id(f, track),
        at=f.at,
        from_agent=_agent_of(state, f.get("OrigTransfererChannel")),
        to_agent=to_agent,
        to_agent_name=state.agent_names.get(to_agent, "") if to_agent else "",
    )
    return state, [transferred]


def _transfer_id(f: _Frame, track: CallTrack) -> str:
    who = (
        f.get("TransfererUniqueid")
        or f.get("OrigTransfererUniqueid")
        or f.get("TransfereeUniqueid")
        or track.call_key
    )
    return bounded_id(f"{who}:{f.event}:{f.stamp}:transferred")


_HANDLERS: Mapping[str, _Handler] = {
    "Newchannel": _on_newchannel,
    "Hangup": _on_hangup,
    "HangupRequest": _on_hangup_request,
    "SoftHangupRequest": _on_hangup_request,
    "BridgeEnter": _on_bridge_enter,
    "BridgeLeave": _on_bridge_leave,
    "QueueCallerJoin": _on_queue_join,
    "QueueCallerAbandon": _on_queue_abandon,
    "QueueCallerLeave": _on_queue_leave,
    "AgentCalled": _on_agent_called,
    "AgentRingNoAnswer": _on_agent_ring_no_answer,
    "AgentConnect": _on_agent_connect,
    "AgentComplete": _on_agent_complete,
    "QueueMemberStatus": _on_queue_member,
    "QueueMemberAdded": _on_queue_member,
    "QueueMember": _on_queue_member,
    "DialBegin": _on_dial_begin,
    "DialEnd": _on_dial_end,
    "VarSet": _on_var_set,
    "MixMonitorStart": _on_mixmonitor_start,
    "BlindTransfer": _on_blind_transfer,
    "AttendedTransfer": _on_attended_transfer,
}
"""AMI event name → handler. Events not listed change nothing."""


# --- queue members and callers leaving queues (the QueueEvent contract) -----------------

MAX_QUEUE = 64
MAX_INTERFACE = 128

DEVICE_STATES: Mapping[str, DeviceState] = {
    "0": DeviceState.UNKNOWN,
    "1": DeviceState.NOT_IN_USE,
    "2": DeviceState.IN_USE,
    "3": DeviceState.BUSY,
    "4": DeviceState.INVALID,
    "5": DeviceState.UNAVAILABLE,
    "6": DeviceState.RINGING,
    "7": DeviceState.RING_IN_USE,
    "8": DeviceState.ON_HOLD,
}
"""Asterisk's numeric member `Status` (AST_DEVICE_*)."""

_QueueHandler = Callable[[TranslatorState, _Frame], list[QueueEvent]]


def translate_queue(
    state: TranslatorState, frame: Mapping[str, str], *, pbx: str, arrival: datetime
) -> list[QueueEvent]:
    """The queue events `frame` means (often none). Pass the state from before `frame` was
    given to `translate`; it is only read (to find a caller's call when a frame lacks
    `Linkedid`)."""
    event = frame.get("Event", "")
    handler = _QUEUE_HANDLERS.get(event)
    if handler is None:
        return []
    uniqueid = frame.get("Uniqueid", "")
    known = state.channels.get(uniqueid)
    parsed = _Frame(
        raw=frame,
        event=event,
        pbx=pbx,
        at=frame_time(frame, arrival),
        stamp=_stamp(frame),
        uniqueid=uniqueid,
        linkedid=frame.get("Linkedid", "") or (known.linkedid if known else ""),
        channel=frame.get("Channel", ""),
    )
    return handler(state, parsed)


def member_view(frame: Mapping[str, str]) -> MemberView | None:
    """A member as a QueueMember* event or a QueueStatus `QueueMember` entry shows it."""
    queue = frame.get("Queue", "")
    interface = frame.get("Interface", "") or frame.get("Location", "")
    if not (0 < len(queue) <= MAX_QUEUE and 0 < len(interface) <= MAX_INTERFACE):
        return None
    paused = frame.get("Paused", "") == "1"
    since = _epoch(frame.get("LastPause", "")) if paused else None
    return MemberView(
        queue=queue,
        interface=interface,
        name=(frame.get("MemberName", "") or frame.get("Name", ""))[:255],
        device=DEVICE_STATES.get(frame.get("Status", ""), DeviceState.UNKNOWN),
        paused=paused,
        pause_reason=frame.get("PausedReason", "")[:255] if paused else "",
        paused_since=since,
    )


def _epoch(raw: str) -> datetime | None:
    """An epoch-seconds header (`LastPause`, `LastCall`); 0 or garbage means unknown."""
    if not raw or len(raw) > 20:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _member_event_id(f: _Frame, member: MemberView, kind: str) -> str:
    return bounded_id(f"{member.queue}:{member.interface}:{f.event}:{f.stamp}:{kind}")


def _on_member_added(state: TranslatorState, f: _Frame) -> list[QueueEvent]:
    member = member_view(f.raw)
    if member is None:
        return []
    event_id = _member_event_id(f, member, "member_added")
    return [MemberAdded(pbx=f.pbx, event_id=event_id, at=f.at, queue=member.queue, member=member)]


def _on_member_removed(state: TranslatorState, f: _Frame) -> list[QueueEvent]:
    member = member_view(f.raw)
    if member is None:
        return []
    return [
        MemberRemoved(
            pbx=f.pbx,
            event_id=_member_event_id(f, member, "member_removed"),
            at=f.at,
            queue=member.queue,
            interface=member.interface,
        )
    ]


def _on_member_pause(state: TranslatorState, f: _Frame) -> list[QueueEvent]:
    member = member_view(f.raw)
    if member is None:
        return []
    if member.paused and member.paused_since is None:
        member = member.model_copy(update={"paused_since": f.at})
    event_id = _member_event_id(f, member, "member_paused")
    return [MemberPaused(pbx=f.pbx, event_id=event_id, at=f.at, queue=member.queue, member=member)]


def _on_member_status(state: TranslatorState, f: _Frame) -> list[QueueEvent]:
    member = member_view(f.raw)
    if member is None:
        return []
    event_id = _member_event_id(f, member, "member_status")
    return [MemberStatus(pbx=f.pbx, event_id=event_id, at=f.at, queue=member.queue, member=member)]


def _on_caller_leave(state: TranslatorState, f: _Frame) -> list[QueueEvent]:
    queue = f.get("Queue")
    if not f.linkedid or not valid_call_key(f.linkedid) or not 0 < len(queue) <= MAX_QUEUE:
        return []
    return [
        CallerLeftQueue(
            pbx=f.pbx,
            event_id=_event_id(f, "left_queue", queue),
            at=f.at,
            queue=queue,
            call_key=f.linkedid,
        )
    ]


_QUEUE_HANDLERS: Mapping[str, _QueueHandler] = {
    "QueueMemberAdded": _on_member_added,
    "QueueMemberRemoved": _on_member_removed,
    "QueueMemberPause": _on_member_pause,
    "QueueMemberPaused": _on_member_pause,
    "QueueMemberStatus": _on_member_status,
    "QueueCallerAbandon": _on_caller_leave,
    "QueueCallerLeave": _on_caller_leave,
}
"""AMI event name → queue-event handler (a second table: `translate`'s call events and
their tests stay exactly as they were). `QueueMemberPaused` is the pre-Asterisk-12 name; a
caller who abandons leaves the queue at `QueueCallerAbandon` (its `QueueCallerLeave` follows)."""

EVENTS_READ = EventFilter(
    set(_HANDLERS) | set(_QUEUE_HANDLERS), {RECORDING_VARIABLE, QUEUE_STATUS_VARIABLE}
)
"""The AMI events the translators read: the AMI reader may drop the rest unparsed."""
