"""Pure reconciliation after an AMI (re)connect. No I/O.

AMI has no replay: whatever happened while the link was down is only visible as the
difference between what the CRM believes and what Asterisk shows now. On every (re)connect
the adapter asks `CoreShowChannels` and `QueueStatus`, turns the answer into a `Snapshot`
(`snapshot_from_frames`), and `reconcile` returns:

- `CallEnded` for every call the CRM holds open that has no live non-Local channel any more,
  at `now`, with the best reason known (answered → completed; else what translation had
  already seen, e.g. a queue that timed out; else queued → abandoned; else caller_hangup),
  preceded by a `CallAnswered` when translation had seen a queue member's leg answer but not
  yet the connection;
- `CallStarted` (same id as translation's, so never twice), `CallQueued`, `CallAnswered`
  and `AgentRinging` for what the snapshot shows and the CRM has not been told: calls that
  started, joined a queue, were answered (the caller's channel shares a bridge with an
  agent's leg, or a leg dialled towards an agent — a `Local/...;1` half or a non-trunk
  device — is up) or ring an agent (such a leg is `Ringing`) while the link was down;
  `AgentStoppedRinging` for agents the CRM believes ring but whose leg is gone;
- a `TranslatorState` seeded from the snapshot (keeping what the previous state knew about
  channels that are still up), so the frames that follow translate as if nothing was missed.

`queue_snapshot` turns the same snapshot's `QueueParams`/`QueueMember`/`QueueEntry` part
into one `QueueSnapshot` event (queue parameters, every member with device and pause state,
the callers waiting), which replaces what the live queue board believed.

Event ids are deterministic: `resync:<call_key>:end`, `resync:<call_key>:queued:<queue>`,
`resync:<call_key>:answered`, `resync:<call_key>:ringing:<leg uniqueid>`,
`resync:<call_key>:ring_stopped:<agent>:<now>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import immutables

from callcenter.calls.state import CallState, CallStatus
from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
    MemberView,
    Party,
    QueueParams,
    QueueSnapshot,
    StopRingReason,
    WaitingView,
)
from pbx_adapter.translate import (
    LOCAL_PREFIX,
    CallTrack,
    ChannelInfo,
    TranslatorConfig,
    TranslatorState,
    bounded_id,
    callee_of,
    clean,
    interface_of,
    member_view,
    started_event_id,
    valid_call_key,
)


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """One channel of a `CoreShowChannels` answer."""

    uniqueid: str
    linkedid: str
    channel: str
    state: str = ""
    """ChannelStateDesc: `Up`, `Ring`, `Ringing`, ..."""
    caller_num: str = ""
    caller_name: str = ""
    context: str = ""
    exten: str = ""
    application: str = ""
    bridge_id: str = ""
    duration_s: int | None = None

    @property
    def local(self) -> bool:
        return self.channel.startswith(LOCAL_PREFIX)


@dataclass(frozen=True, slots=True)
class QueueCaller:
    """One caller waiting in a queue, from a `QueueStatus` answer (`QueueEntry`)."""

    queue: str
    uniqueid: str
    channel: str
    position: int | None = None
    wait_s: int | None = None
    caller_num: str = ""
    caller_name: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Asterisk shows at one moment: live channels, queue callers, queue members."""

    channels: tuple[LiveChannel, ...] = ()
    queue_callers: tuple[QueueCaller, ...] = ()
    members: Mapping[str, str] = field(default_factory=dict)
    """Member interface → member name."""
    queue_params: tuple[QueueParams, ...] = ()
    member_views: tuple[MemberView, ...] = ()
    """Every member of every queue, with device and pause state (`QueueMember` entries)."""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    events: tuple[CallEvent, ...]
    state: TranslatorState


def _int(raw: str) -> int | None:
    if not raw or len(raw) > 9:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _duration(raw: str) -> int | None:
    """`HH:MM:SS` (CoreShowChannel `Duration`) or plain seconds, as seconds."""
    parts = raw.split(":")
    if not raw or len(parts) > 3:
        return None
    total = 0
    for part in parts:
        value = _int(part)
        if value is None or value < 0:
            return None
        total = total * 60 + value
    return total


def snapshot_from_frames(frames: Iterable[Mapping[str, str]]) -> Snapshot:
    """The snapshot held by the event frames that answer `CoreShowChannels` and `QueueStatus`.

    Other frames (responses, list-complete markers, ordinary events) are ignored.
    """
    channels: dict[str, LiveChannel] = {}
    waiting: list[Mapping[str, str]] = []
    members: dict[str, str] = {}
    params: dict[str, QueueParams] = {}
    views: dict[tuple[str, str], MemberView] = {}
    for frame in frames:
        event = frame.get("Event", "")
        if event == "CoreShowChannel":
            uid = frame.get("Uniqueid", "")
            if not uid:
                continue
            channels[uid] = LiveChannel(
                uniqueid=uid,
                linkedid=frame.get("Linkedid", "") or uid,
                channel=frame.get("Channel", ""),
                state=frame.get("ChannelStateDesc", ""),
                caller_num=frame.get("CallerIDNum", ""),
                caller_name=frame.get("CallerIDName", ""),
                context=frame.get("Context", ""),
                exten=frame.get("Exten", ""),
                application=frame.get("Application", ""),
                bridge_id=frame.get("BridgeId", ""),
                duration_s=_duration(frame.get("Duration", "")),
            )
        elif event == "QueueEntry":
            waiting.append(frame)
        elif event in ("QueueMember", "QueueMemberStatus"):
            interface = frame.get("Location", "") or frame.get("Interface", "")
            name = frame.get("Name", "") or frame.get("MemberName", "")
            if interface and name:
                members[interface] = name
            view = member_view(frame) if event == "QueueMember" else None
            if view is not None:
                views[(view.queue, view.interface)] = view
        elif event == "QueueParams":
            found = _queue_params(frame)
            if found is not None:
                params[found.queue] = found
    by_name = {c.channel: c.uniqueid for c in channels.values()}
    callers: list[QueueCaller] = []
    for frame in waiting:
        channel = frame.get("Channel", "")
        uid = frame.get("Uniqueid", "") or by_name.get(channel, "")
        queue = frame.get("Queue", "")
        if not uid or not queue:
            continue
        callers.append(
            QueueCaller(
                queue=queue,
                uniqueid=uid,
                channel=channel,
                position=_int(frame.get("Position", "")),
                wait_s=_int(frame.get("Wait", "")),
                caller_num=frame.get("CallerIDNum", ""),
                caller_name=frame.get("CallerIDName", ""),
            )
        )
    return Snapshot(
        tuple(channels.values()),
        tuple(callers),
        members,
        tuple(params.values()),
        tuple(views.values()),
    )


def _queue_params(frame: Mapping[str, str]) -> QueueParams | None:
    queue = frame.get("Queue", "")
    if not 0 < len(queue) <= 64:
        return None
    level = _int(frame.get("ServiceLevel", ""))
    return QueueParams(
        queue=queue,
        strategy=frame.get("Strategy", "")[:32],
        service_level_s=level if level else None,
    )


def queue_snapshot(snapshot: Snapshot, *, pbx: str, now: datetime) -> QueueSnapshot:
    """The queue part of `snapshot` as one event: parameters, members, waiting callers (keyed
    on their call, the Linkedid of their channel)."""
    linked = {c.uniqueid: c.linkedid for c in snapshot.channels}
    waiting = tuple(
        WaitingView(queue=q.queue, call_key=key, position=q.position)
        for q in snapshot.queue_callers
        if len(q.queue) <= 64 and valid_call_key(key := linked.get(q.uniqueid, q.uniqueid))
    )
    return QueueSnapshot(
        pbx=pbx,
        event_id=bounded_id(f"queue_snapshot:{now.timestamp():.6f}"),
        at=now,
        queues=snapshot.queue_params,
        members=snapshot.member_views,
        waiting=waiting,
    )


@dataclass(frozen=True, slots=True)
class _LiveCall:
    """The snapshot's view of one linkedid."""

    key: str
    channels: tuple[LiveChannel, ...]
    anchor: LiveChannel
    queued: QueueCaller | None
    answered_by: LiveChannel | None
    ringing: tuple[LiveChannel, ...]
    dialled: tuple[LiveChannel, ...] = ()
    """Agent legs not answered yet, ringing or still being set up (`Down`)."""

    @property
    def non_local(self) -> tuple[LiveChannel, ...]:
        return tuple(c for c in self.channels if not c.local)


def _live_calls(snapshot: Snapshot, config: TranslatorConfig) -> dict[str, _LiveCall]:
    grouped: dict[str, list[LiveChannel]] = {}
    for channel in snapshot.channels:
        if valid_call_key(channel.linkedid):
            grouped.setdefault(channel.linkedid, []).append(channel)
    queued = {q.uniqueid: q for q in snapshot.queue_callers}
    calls: dict[str, _LiveCall] = {}
    for key, channels in sorted(grouped.items()):
        non_local = [c for c in channels if not c.local]
        if not non_local:
            continue  # a Local-only linkedid is not a call
        anchor = next(
            (c for c in non_local if c.uniqueid == key),
            max(non_local, key=lambda c: (c.duration_s or 0, c.uniqueid)),
        )
        others = [c for c in channels if c.uniqueid != anchor.uniqueid]
        legs = [c for c in others if _agent_leg(c, config)]
        # The agent who took the call shares the caller's bridge, or (between the answer
        # and the bridging) is the one dialled leg that is up.
        peer = next(
            (c for c in legs if anchor.bridge_id and c.bridge_id == anchor.bridge_id),
            next((c for c in legs if c.state == "Up"), None),
        )
        calls[key] = _LiveCall(
            key=key,
            channels=tuple(channels),
            anchor=anchor,
            queued=next((queued[c.uniqueid] for c in channels if c.uniqueid in queued), None),
            answered_by=peer,
            ringing=tuple(c for c in legs if c.state == "Ringing"),
            dialled=tuple(c for c in legs if c.state in _BEING_DIALLED),
        )
    return calls


_BEING_DIALLED = frozenset({"Ringing", "Down", "Dialing", "Pre-ring"})
"""States of a leg dialled towards an agent and not answered: a queue's `Local/...;1` leg
stays `Down` until the phone behind it reports ringing. A ring the CRM knows of is kept while
its leg is in one of these; a ring is only started from a leg that says `Ringing`."""


def _agent_leg(channel: LiveChannel, config: TranslatorConfig) -> bool:
    """A leg dialled towards an agent: the `;1` half of a Local channel, or a device that is
    not a trunk."""
    if channel.local:
        return channel.channel.endswith(";1")
    return not config.is_trunk(channel.channel, channel.context)


def reconcile(
    open_calls: Iterable[CallState],
    snapshot: Snapshot,
    *,
    pbx: str,
    now: datetime,
    previous: TranslatorState | None = None,
) -> Reconciliation:
    """Events that bring the CRM's open calls in line with the snapshot, and the state that
    translation continues from. `previous` is the translator's state before the link broke
    (None after an adapter restart)."""
    prior = previous if previous is not None else TranslatorState()
    names = {**prior.agent_names, **snapshot.members}
    live = _live_calls(snapshot, prior.config)
    known = {c.call_key: c for c in open_calls if c.status is not CallStatus.ENDED}
    events: list[CallEvent] = []
    for key in sorted(known):
        call = known[key]
        if key not in live:
            events.extend(_ended(call, prior.calls.get(key), names, pbx, now))
        else:
            events.extend(_catch_up(call, live[key], names, pbx, now))
    for key in sorted(set(live) - set(known)):
        events.append(_started(live[key], prior.config, pbx, now))
        events.extend(_catch_up(None, live[key], names, pbx, now))
    state = _seed(prior, snapshot, live, known, names)
    return Reconciliation(tuple(events), state)


def _ended(
    call: CallState, track: CallTrack | None, names: Mapping[str, str], pbx: str, now: datetime
) -> list[CallEvent]:
    at = max(now, call.started_at) if call.started_at is not None else now
    events: list[CallEvent] = []
    if call.answered_at is None and track is not None and track.member_answered:
        # A member had answered and the queue was connecting them when the link broke.
        agent = track.member_answered
        events.append(
            CallAnswered(
                pbx=pbx,
                call_key=call.call_key,
                event_id=bounded_id(f"resync:{call.call_key}:answered"),
                at=at,
                agent=agent,
                agent_name=names.get(agent, ""),
                queue=track.queue,
            )
        )
    reason, ended_by = _best_known_end(call, track)
    events.append(
        CallEnded(
            pbx=pbx,
            call_key=call.call_key,
            event_id=bounded_id(f"resync:{call.call_key}:end"),
            at=at,
            reason=reason,
            ended_by=ended_by,
        )
    )
    return events


def _best_known_end(call: CallState, track: CallTrack | None) -> tuple[EndReason, Party | None]:
    if call.answered_at is not None or (
        track is not None and (track.answered or track.member_answered)
    ):
        return EndReason.COMPLETED, track.ended_by if track is not None else None
    if track is not None and track.outcome is not None:
        return track.outcome, None
    if call.status is CallStatus.QUEUED or call.queued_at is not None:
        return EndReason.ABANDONED, None
    return EndReason.CALLER_HANGUP, None


def _ago(now: datetime, seconds: int | None) -> datetime:
    return now - timedelta(seconds=seconds) if seconds else now


def _direction(call: _LiveCall, config: TranslatorConfig) -> Direction:
    anchor = call.anchor
    if config.is_trunk(anchor.channel, anchor.context):
        return Direction.INBOUND if anchor.uniqueid == call.key else Direction.OUTBOUND
    if any(config.is_trunk(c.channel, c.context) for c in call.non_local):
        return Direction.OUTBOUND
    return Direction.INTERNAL


def _started(call: _LiveCall, config: TranslatorConfig, pbx: str, now: datetime) -> CallStarted:
    anchor = call.anchor
    return CallStarted(
        pbx=pbx,
        call_key=call.key,
        event_id=started_event_id(call.key),
        at=_ago(now, anchor.duration_s),
        direction=_direction(call, config),
        caller_num=clean(anchor.caller_num, 64),
        caller_name=clean(anchor.caller_name, 255),
        callee_num=callee_of(anchor.exten),
    )


def _catch_up(
    call: CallState | None,
    live: _LiveCall,
    names: Mapping[str, str],
    pbx: str,
    now: datetime,
) -> list[CallEvent]:
    """What the CRM missed about a call that is still up."""
    key = live.key
    events: list[CallEvent] = []
    queued = live.queued
    if queued is not None and (call is None or call.queue != queued.queue):
        events.append(
            CallQueued(
                pbx=pbx,
                call_key=key,
                event_id=bounded_id(f"resync:{key}:queued:{queued.queue}"),
                at=_ago(now, queued.wait_s),
                queue=queued.queue,
                position=queued.position,
            )
        )
    queue = queued.queue if queued is not None else (call.queue if call is not None else None)
    if call is not None and call.answered_at is not None:
        return events
    if live.answered_by is not None:
        agent = interface_of(live.answered_by.channel)
        events.append(
            CallAnswered(
                pbx=pbx,
                call_key=key,
                event_id=bounded_id(f"resync:{key}:answered"),
                at=now,
                agent=agent,
                agent_name=names.get(agent, ""),
                queue=queue,
            )
        )
        return events
    ringing_now = {interface_of(c.channel): c for c in live.ringing}
    dialled_now = {interface_of(c.channel) for c in live.dialled}
    believed = call.ringing_agents if call is not None else frozenset[str]()
    for agent in sorted(believed - set(ringing_now) - dialled_now):
        events.append(
            AgentStoppedRinging(
                pbx=pbx,
                call_key=key,
                event_id=bounded_id(f"resync:{key}:ring_stopped:{agent}:{now.timestamp():.6f}"),
                at=now,
                agent=agent,
                reason=StopRingReason.NO_ANSWER,
                queue=queue,
            )
        )
    for agent in sorted(set(ringing_now) - believed):
        events.append(
            AgentRinging(
                pbx=pbx,
                call_key=key,
                event_id=bounded_id(f"resync:{key}:ringing:{ringing_now[agent].uniqueid}"),
                at=now,
                agent=agent,
                agent_name=names.get(agent, ""),
                queue=queue,
            )
        )
    return events


def _seed(
    prior: TranslatorState,
    snapshot: Snapshot,
    live: Mapping[str, _LiveCall],
    known: Mapping[str, CallState],
    names: Mapping[str, str],
) -> TranslatorState:
    config = prior.config
    channels: dict[str, ChannelInfo] = {}
    for channel in snapshot.channels:
        if not channel.uniqueid or not valid_call_key(channel.linkedid):
            continue
        channels[channel.uniqueid] = _seed_channel(
            prior.channels.get(channel.uniqueid), channel, config
        )
    calls = {
        key: _seed_call(prior.calls.get(key), known.get(key), call, config)
        for key, call in live.items()
    }
    return TranslatorState(
        config=config,
        channels=immutables.Map(channels),
        calls=immutables.Map(calls),
        agent_names=immutables.Map(names),
    )


def _seed_channel(
    old: ChannelInfo | None, channel: LiveChannel, config: TranslatorConfig
) -> ChannelInfo:
    bridged = bool(channel.bridge_id)
    if old is None:
        return ChannelInfo(
            uniqueid=channel.uniqueid,
            linkedid=channel.linkedid,
            name=channel.channel,
            local=channel.local,
            trunk=config.is_trunk(channel.channel, channel.context),
            bridged=bridged,
        )
    released = old.self_released if old.bridged == bridged else None
    return ChannelInfo(
        uniqueid=channel.uniqueid,
        linkedid=channel.linkedid,
        name=channel.channel,
        local=old.local,
        trunk=old.trunk,
        bridged=bridged,
        hangup_requested=old.hangup_requested,
        self_released=released,
        recording_file=old.recording_file,
    )


def _seed_call(
    old: CallTrack | None,
    call: CallState | None,
    live: _LiveCall,
    config: TranslatorConfig,
) -> CallTrack:
    uids = {c.uniqueid for c in live.channels}
    in_queue = live.queued is not None
    was_queued = (old.in_queue if old is not None else False) or (
        call is not None and call.status is CallStatus.QUEUED
    )
    answered = (
        (old is not None and old.answered)
        or (call is not None and call.answered_at is not None)
        or live.answered_by is not None
    )
    outcome = old.outcome if old is not None else None
    if in_queue and not (old is not None and old.in_queue):
        outcome = EndReason.ABANDONED
    elif not in_queue and was_queued and not (old is not None and old.abandon_seen):
        outcome = EndReason.QUEUE_TIMEOUT  # left the queue while still on the line
    ringing = {k: v for k, v in (old.ringing if old is not None else {}).items() if k in uids}
    if not answered:
        ringing.update({c.uniqueid: interface_of(c.channel) for c in live.ringing})
    queue_legs = (old.queue_legs if old is not None else frozenset()) & uids
    if in_queue:
        queue_legs |= set(ringing)
    keep_queue_flags = old is not None and old.in_queue and in_queue
    if old is not None:
        direction = old.direction
    elif call is not None:
        direction = call.direction
    else:
        direction = _direction(live, config)
    queue = live.queued.queue if live.queued is not None else None
    if queue is None:
        queue = old.queue if old is not None else (call.queue if call is not None else None)
    return CallTrack(
        call_key=live.key,
        anchor=old.anchor if old is not None else live.anchor.uniqueid,
        direction=direction,
        live=frozenset(c.uniqueid for c in live.non_local),
        queue=queue,
        in_queue=in_queue,
        abandon_seen=old.abandon_seen if keep_queue_flags and old is not None else False,
        member_answered=old.member_answered if keep_queue_flags and old is not None else "",
        outcome=outcome,
        answered=answered,
        ended_by=old.ended_by if old is not None else None,
        ringing=ringing,
        queue_legs=frozenset(queue_legs),
    )
