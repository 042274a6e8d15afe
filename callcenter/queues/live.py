"""The live queue board: a pure fold of call events and queue events. No I/O, no clock.

`apply(board, event) -> board` for every `PbxEvent` of one PBX, in PBX order;
`snapshot(board, now, targets, defaults) -> BoardSnapshot` for a wallboard.

- Calls are followed through the very state machine that writes the call records
  (`callcenter.calls.state.apply`), so the counters of the board and those computed from the
  records are the same numbers. A call ended a few minutes ago is kept (`ENDED_GRACE`) so a
  late event changes its fact as it changes its record.
- A caller waits from `CallQueued` until answered, ended, `CallerLeftQueue`, or a queue
  snapshot that no longer lists them. Positions are by time of entering the queue.
- An agent's state comes first from the calls (ringing with / talking on a call, with whom
  and since when), then from the member's device (unavailable, or busy on a call the board
  does not know), then from the pause (reason, since), else idle. Members are per queue;
  an agent's calls count in every queue they are a member of.
- Today's counters are the KPI registry (`callcenter.kpi`) over the facts of the calls that
  ended on the board's local day; an event of a later day starts a new day (and so does a
  snapshot taken on a later day, for what it shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from callcenter.calls import state as calls
from callcenter.calls.models import Outcome
from callcenter.calls.state import CallState, CallStatus
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallerLeftQueue,
    CallEvent,
    CallQueued,
    CallStarted,
    DeviceState,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
    MemberStatus,
    MemberView,
    PbxEvent,
    QueueParams,
    QueueSnapshot,
)
from callcenter.kpi import KPIS, CallFact, KpiParams, compute_all, fact_of_state
from callcenter.queues.schemas import (
    AgentCall,
    AgentState,
    AgentView,
    Alarm,
    BoardSnapshot,
    KpiDefinition,
    KpiValue,
    QueueTargetsOut,
    QueueView,
    WaitingCaller,
)

ENDED_GRACE = timedelta(minutes=5)
"""How long an ended call is kept for events that arrive after its end."""

_OPENING = (CallStarted, CallQueued, AgentRinging, CallAnswered)
"""Events that may be the first the board sees of a call (others are late news)."""
_UNAVAILABLE = frozenset({DeviceState.INVALID, DeviceState.UNAVAILABLE})
_BUSY = frozenset(
    {DeviceState.IN_USE, DeviceState.BUSY, DeviceState.RING_IN_USE, DeviceState.ON_HOLD}
)

MemberKey = tuple[str, str]
"""(queue, interface)"""


@dataclass(frozen=True, slots=True)
class BoardCall:
    """A call the board follows: its state and what only the board needs."""

    state: CallState
    in_queue: bool = False
    rings: Mapping[str, datetime | None] = field(default_factory=dict)
    """Agent interface → ringing since (None when not known)."""
    agent_since: datetime | None = None
    """Since when the current agent has the call."""
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class Member:
    queue: str
    interface: str
    name: str = ""
    device: DeviceState = DeviceState.UNKNOWN
    device_since: datetime | None = None
    paused: bool = False
    pause_reason: str = ""
    paused_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class LiveBoard:
    """Everything one PBX's queues show now. Treat it as a value: never mutate it."""

    pbx: str = "default"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    day: date | None = None
    params: Mapping[str, QueueParams] = field(default_factory=dict)
    members: Mapping[MemberKey, Member] = field(default_factory=dict)
    calls: Mapping[str, BoardCall] = field(default_factory=dict)
    facts: Mapping[str, Mapping[str, CallFact]] = field(default_factory=dict)
    """Queue → call key → fact, for the calls that ended on `day`."""


@dataclass(frozen=True, slots=True)
class QueueTargets:
    """What supervisors set per queue (the `queue_settings` table)."""

    service_level_s: int | None = None
    alarm_longest_wait_s: int | None = None
    alarm_service_level_pct: float | None = None
    alarm_no_agent: bool = True


@dataclass(frozen=True, slots=True)
class BoardDefaults:
    service_level_s: float = 20.0
    short_abandon_s: float = 5.0


def local_day(board: LiveBoard, at: datetime) -> date:
    return at.astimezone(board.tz).date()


# --- the fold -----------------------------------------------------------------------------


def apply(board: LiveBoard, event: PbxEvent) -> LiveBoard:
    """The board after `event` (events of other PBXs change nothing)."""
    if event.pbx != board.pbx:
        return board
    board = _roll_day(board, event.at)
    if isinstance(event, QueueSnapshot):
        return _on_snapshot(board, event)
    if isinstance(event, MemberAdded | MemberPaused | MemberStatus):
        return _on_member(board, event.member, event.at)
    if isinstance(event, MemberRemoved):
        key = (event.queue, event.interface)
        return replace(board, members={k: v for k, v in board.members.items() if k != key})
    if isinstance(event, CallerLeftQueue):
        return _on_left_queue(board, event)
    return _on_call(board, event)


def apply_all(board: LiveBoard, events: Iterable[PbxEvent]) -> LiveBoard:
    for event in events:
        board = apply(board, event)
    return board


def seed(
    board: LiveBoard,
    open_calls: Iterable[CallState],
    facts: Iterable[CallFact],
    *,
    day: date,
) -> LiveBoard:
    """The board after a restart: open calls and today's facts as the call records hold them.

    A call counts as waiting if its record says queued (the next queue snapshot corrects
    that); ring start times are not stored, so they are unknown."""
    followed = {
        c.call_key: BoardCall(
            state=c,
            in_queue=c.status is CallStatus.QUEUED,
            rings=dict.fromkeys(sorted(c.ringing_agents)),
            agent_since=c.answered_at,
        )
        for c in open_calls
        if c.status is not CallStatus.ENDED and c.pbx == board.pbx
    }
    by_queue: dict[str, dict[str, CallFact]] = {}
    for fact in facts:
        if local_day(board, fact.ended_at) == day:
            by_queue.setdefault(fact.queue, {})[fact.call_key] = fact
    return replace(board, day=day, calls=followed, facts=by_queue)


def with_outcomes(board: LiveBoard, outcomes: Mapping[str, Outcome | None]) -> LiveBoard:
    """The board after operators (or rules) set the outcome of some calls (by call key)."""
    calls_now = dict(board.calls)
    for key, outcome in outcomes.items():
        followed = calls_now.get(key)
        if followed is not None:
            calls_now[key] = replace(followed, outcome=outcome)
    facts = {
        queue: {
            key: replace(fact, outcome=outcomes[key]) if key in outcomes else fact
            for key, fact in by_key.items()
        }
        if outcomes.keys() & by_key.keys()
        else by_key
        for queue, by_key in board.facts.items()
    }
    return replace(board, calls=calls_now, facts=facts)


def affected_queues(before: LiveBoard, event: PbxEvent, after: LiveBoard) -> set[str]:
    """The queues whose view `event` may have changed."""
    if before is after:
        return set()
    if isinstance(event, QueueSnapshot) or before.day != after.day:
        return queues_of(before) | queues_of(after)
    if isinstance(event, MemberAdded | MemberPaused | MemberStatus | MemberRemoved):
        return {event.queue}
    if isinstance(event, CallerLeftQueue):
        return {event.queue}
    touched: set[str] = set()
    agents: set[str] = set()
    for board in (before, after):
        followed = board.calls.get(event.call_key)
        if followed is not None:
            if followed.state.queue:
                touched.add(followed.state.queue)
            agents.update(followed.rings)
            if followed.state.agent:
                agents.add(followed.state.agent)
    touched.update(queue for queue, interface in after.members if interface in agents)
    return touched


@dataclass(frozen=True, slots=True)
class PauseChange:
    """A member's pause as it stands after an event: paused since `at` with `reason`, or not
    paused (any pause ended at `at`)."""

    queue: str
    interface: str
    name: str
    paused: bool
    reason: str
    at: datetime


def pause_changes(before: LiveBoard, event: PbxEvent, after: LiveBoard) -> list[PauseChange]:
    """The pauses `event` began or ended. A queue snapshot states every member's pause."""
    if isinstance(event, QueueSnapshot):
        keys = set(before.members) | set(after.members)
    elif isinstance(event, MemberAdded | MemberPaused | MemberStatus):
        keys = {(event.queue, event.member.interface)}
    elif isinstance(event, MemberRemoved):
        keys = {(event.queue, event.interface)}
    else:
        return []
    changes = []
    for key in sorted(keys):
        old, new = before.members.get(key), after.members.get(key)
        was = (old.pause_reason, old.paused_since) if old is not None and old.paused else None
        now = (new.pause_reason, new.paused_since) if new is not None and new.paused else None
        if was == now and not isinstance(event, QueueSnapshot):
            continue
        name = new.name if new is not None else (old.name if old is not None else "")
        if new is not None and new.paused:
            at = new.paused_since or event.at
            changes.append(PauseChange(key[0], key[1], name, True, new.pause_reason, at))
        else:
            changes.append(PauseChange(key[0], key[1], name, False, "", event.at))
    return changes


def _roll_day(board: LiveBoard, at: datetime) -> LiveBoard:
    day = local_day(board, at)
    if board.day is None:
        return replace(board, day=day)
    if day > board.day:
        return replace(board, day=day, facts={})
    return board


def _on_call(board: LiveBoard, event: CallEvent) -> LiveBoard:
    current = board.calls.get(event.call_key)
    if current is None and not isinstance(event, _OPENING):
        return board
    state, _ = calls.apply(current.state if current is not None else None, event)
    if current is not None and state == current.state:
        return board
    ended = state.status is CallStatus.ENDED
    in_queue = current.in_queue if current is not None else False
    if isinstance(event, CallQueued) and state.answered_at is None:
        in_queue = True
    if ended or state.answered_at is not None:
        in_queue = False
    old_rings = current.rings if current is not None else {}
    rings = {agent: old_rings.get(agent, event.at) for agent in sorted(state.ringing_agents)}
    agent_since = (
        current.agent_since
        if current is not None and current.state.agent == state.agent
        else (event.at if state.agent else None)
    )
    outcome = current.outcome if current is not None else None
    followed = BoardCall(state, in_queue, rings, agent_since, outcome)
    calls_now = {**board.calls, event.call_key: followed}
    if ended:
        horizon = event.at - ENDED_GRACE
        calls_now = {
            key: c
            for key, c in calls_now.items()
            if c.state.status is not CallStatus.ENDED
            or c.state.ended_at is None
            or c.state.ended_at >= horizon
        }
    facts = _refact(
        board,
        fact_of_state(current.state, outcome) if current is not None else None,
        fact_of_state(state, outcome),
    )
    return replace(board, calls=calls_now, facts=facts)


def _refact(
    board: LiveBoard, old: CallFact | None, new: CallFact | None
) -> Mapping[str, Mapping[str, CallFact]]:
    """Today's facts with `old` replaced by `new` (either may be None)."""
    if old == new:
        return board.facts
    facts = dict(board.facts)
    if old is not None and old.call_key in facts.get(old.queue, {}):
        facts[old.queue] = {k: v for k, v in facts[old.queue].items() if k != old.call_key}
    if new is not None and local_day(board, new.ended_at) == board.day:
        facts[new.queue] = {**facts.get(new.queue, {}), new.call_key: new}
    return facts


def _on_left_queue(board: LiveBoard, event: CallerLeftQueue) -> LiveBoard:
    followed = board.calls.get(event.call_key)
    if followed is None or not followed.in_queue or followed.state.queue != event.queue:
        return board
    return replace(board, calls={**board.calls, event.call_key: replace(followed, in_queue=False)})


def _member_from(view: MemberView, old: Member | None, at: datetime) -> Member:
    device_since = old.device_since if old is not None and old.device is view.device else at
    paused_since: datetime | None = None
    if view.paused:
        same_pause = old is not None and old.paused and old.pause_reason == view.pause_reason
        paused_since = view.paused_since or (
            old.paused_since if same_pause and old is not None else at
        )
    return Member(
        queue=view.queue,
        interface=view.interface,
        name=view.name or (old.name if old is not None else ""),
        device=view.device,
        device_since=device_since,
        paused=view.paused,
        pause_reason=view.pause_reason,
        paused_since=paused_since,
    )


def _on_member(board: LiveBoard, view: MemberView, at: datetime) -> LiveBoard:
    key = (view.queue, view.interface)
    old = board.members.get(key)
    member = _member_from(view, old, at)
    if member == old:
        return board
    return replace(board, members={**board.members, key: member})


def _on_snapshot(board: LiveBoard, snap: QueueSnapshot) -> LiveBoard:
    members = {
        (view.queue, view.interface): _member_from(
            view, board.members.get((view.queue, view.interface)), snap.at
        )
        for view in snap.members
    }
    waiting = {w.call_key for w in snap.waiting}
    calls_now: dict[str, BoardCall] = {}
    for key, followed in board.calls.items():
        waits = key in waiting and followed.state.status is not CallStatus.ENDED
        calls_now[key] = (
            followed if followed.in_queue == waits else replace(followed, in_queue=waits)
        )
    return replace(
        board,
        params={p.queue: p for p in snap.queues},
        members=members,
        calls=calls_now,
    )


# --- what a wallboard shows ---------------------------------------------------------------


def queues_of(board: LiveBoard) -> set[str]:
    """Every queue the board knows of (configured, with members, callers or calls today)."""
    names = set(board.params) | {q for q, _ in board.members} | set(board.facts)
    names.update(
        c.state.queue
        for c in board.calls.values()
        if c.state.queue and c.state.status is not CallStatus.ENDED
    )
    return names


def kpi_params(
    board: LiveBoard, queue: str, targets: QueueTargets, defaults: BoardDefaults
) -> KpiParams:
    """The thresholds in effect: the supervisors' T, else the PBX's, else the default."""
    params = board.params.get(queue)
    level = targets.service_level_s or (params.service_level_s if params else None)
    return KpiParams(
        service_level_s=float(level) if level else defaults.service_level_s,
        short_abandon_s=defaults.short_abandon_s,
    )


def today_facts(board: LiveBoard, queue: str, now: datetime) -> list[CallFact]:
    """The facts the counters are computed from at `now` (none once the day is over)."""
    if board.day is None or local_day(board, now) > board.day:
        return []
    return list(board.facts.get(queue, {}).values())


def kpi_values(facts: list[CallFact], params: KpiParams) -> dict[str, KpiValue]:
    results = compute_all(facts, params)
    placeholders = {"t": params.service_level_s, "n": params.short_abandon_s}
    return {
        kpi.key: KpiValue(
            key=kpi.key,
            value=results[kpi.key].value,
            numerator=results[kpi.key].numerator,
            denominator=results[kpi.key].denominator,
            definition=KpiDefinition(
                key=kpi.key,
                unit=kpi.unit,
                name_key=kpi.name_key,
                formula_key=kpi.formula_key,
                numerator_key=kpi.numerator_key,
                denominator_key=kpi.denominator_key,
                short_call_rule_key=kpi.short_call_rule_key,
                params=placeholders,
            ),
        )
        for kpi in KPIS
    }


def _seconds(since: datetime, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds())


def waiting_callers(board: LiveBoard, queue: str, now: datetime) -> list[WaitingCaller]:
    waiting = sorted(
        (
            c.state
            for c in board.calls.values()
            if c.in_queue and c.state.queue == queue and c.state.status is not CallStatus.ENDED
        ),
        key=lambda s: (s.queued_at or s.started_at or now, s.call_key),
    )
    out = []
    for position, state in enumerate(waiting, start=1):
        since = state.queued_at or state.started_at or now
        out.append(
            WaitingCaller(
                call_key=state.call_key,
                caller_num=state.caller_num,
                caller_name=state.caller_name,
                position=position,
                since=since,
                wait_s=_seconds(since, now),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class _Activity:
    state: AgentState
    call: AgentCall


def agent_activity(board: LiveBoard) -> dict[str, _Activity]:
    """What each agent interface does on the calls the board follows."""
    found: dict[str, _Activity] = {}
    for followed in sorted(board.calls.values(), key=lambda c: c.state.call_key):
        state = followed.state
        if state.status is CallStatus.ENDED:
            continue

        def call(since: datetime | None, state: CallState = state) -> AgentCall:
            return AgentCall(
                call_key=state.call_key,
                caller_num=state.caller_num,
                caller_name=state.caller_name,
                queue=state.queue,
                since=since,
            )

        if state.agent is not None and state.answered_at is not None:
            since = followed.agent_since or state.answered_at
            found[state.agent] = _Activity(AgentState.IN_CALL, call(since))
        for agent, ring_since in followed.rings.items():
            known = found.get(agent)
            if known is None or (
                known.state is AgentState.RINGING and _rang_earlier(ring_since, known.call.since)
            ):
                found[agent] = _Activity(AgentState.RINGING, call(ring_since))
    return found


def _rang_earlier(since: datetime | None, other: datetime | None) -> bool:
    """An agent ringing for several calls shows the oldest ring; one that rang before a
    restart (its start unknown) is older than any seen since."""
    if since is None:
        return other is not None
    return other is not None and since < other


def agent_view(member: Member, activity: _Activity | None) -> AgentView:
    state, since, call = _agent_state(member, activity)
    return AgentView(
        interface=member.interface,
        name=member.name,
        state=state,
        since=since,
        call=call,
        paused=member.paused,
        pause_reason=member.pause_reason,
        paused_since=member.paused_since,
        device=member.device,
    )


def _agent_state(
    member: Member, activity: _Activity | None
) -> tuple[AgentState, datetime | None, AgentCall | None]:
    if activity is not None:
        return activity.state, activity.call.since, activity.call
    if member.device in _UNAVAILABLE:
        return AgentState.UNAVAILABLE, member.device_since, None
    if member.device in _BUSY:
        return AgentState.IN_CALL, member.device_since, None
    if member.device is DeviceState.RINGING:
        return AgentState.RINGING, member.device_since, None
    if member.paused:
        return AgentState.PAUSED, member.paused_since, None
    return AgentState.IDLE, member.device_since, None


def alarms_of(
    targets: QueueTargets,
    waiting: list[WaitingCaller],
    agents: list[AgentView],
    kpis: Mapping[str, KpiValue],
) -> list[Alarm]:
    alarms: list[Alarm] = []
    longest = max((w.wait_s for w in waiting), default=None)
    limit = targets.alarm_longest_wait_s
    if limit is not None and longest is not None and longest >= limit:
        alarms.append(Alarm.LONGEST_WAIT)
    level = kpis["service_level"].value
    floor = targets.alarm_service_level_pct
    if floor is not None and level is not None and level < floor:
        alarms.append(Alarm.SERVICE_LEVEL)
    if targets.alarm_no_agent and agents:
        idle = any(a.state is AgentState.IDLE for a in agents)
        logged_out = all(a.state in (AgentState.PAUSED, AgentState.UNAVAILABLE) for a in agents)
        if (waiting and not idle) or logged_out:
            alarms.append(Alarm.NO_AGENT)
    return alarms


def queue_view(
    board: LiveBoard,
    queue: str,
    now: datetime,
    targets: QueueTargets,
    defaults: BoardDefaults,
    kpis: dict[str, KpiValue] | None = None,
) -> QueueView:
    """One queue at `now`. `kpis` may be given when already computed for the same facts."""
    params = kpi_params(board, queue, targets, defaults)
    if kpis is None:
        kpis = kpi_values(today_facts(board, queue, now), params)
    waiting = waiting_callers(board, queue, now)
    activity = agent_activity(board)
    members = sorted(
        (m for (q, _), m in board.members.items() if q == queue),
        key=lambda m: (m.name or m.interface, m.interface),
    )
    agents = [agent_view(m, activity.get(m.interface)) for m in members]
    config = board.params.get(queue)
    return QueueView(
        pbx=board.pbx,
        queue=queue,
        strategy=config.strategy if config else "",
        service_level_s=params.service_level_s,
        day=local_day(board, now),
        waiting=waiting,
        longest_wait_s=max((w.wait_s for w in waiting), default=None),
        agents=agents,
        agents_idle=sum(1 for a in agents if a.state is AgentState.IDLE),
        kpis=kpis,
        alarms=alarms_of(targets, waiting, agents, kpis),
        targets=QueueTargetsOut(
            service_level_s=targets.service_level_s,
            alarm_longest_wait_s=targets.alarm_longest_wait_s,
            alarm_service_level_pct=targets.alarm_service_level_pct,
            alarm_no_agent=targets.alarm_no_agent,
        ),
    )


def snapshot(
    boards: Iterable[LiveBoard],
    now: datetime,
    targets: Mapping[str, QueueTargets] | None = None,
    defaults: BoardDefaults | None = None,
    *,
    timezone: str = "Europe/Moscow",
) -> BoardSnapshot:
    """Every queue of every board at `now`, ordered by PBX and queue name."""
    targets = targets or {}
    defaults = defaults or BoardDefaults()
    views = [
        queue_view(board, queue, now, targets.get(queue, QueueTargets()), defaults)
        for board in sorted(boards, key=lambda b: b.pbx)
        for queue in sorted(queues_of(board))
    ]
    return BoardSnapshot(
        at=now, timezone=timezone, day=now.astimezone(ZoneInfo(timezone)).date(), queues=views
    )
