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
  snapshot taken on a later day, for what it shows). The board keeps running totals of them
  per queue (`KpiTotals`, under the thresholds it was given by `with_kpi_params`), so a call
  that ends costs the same early and late in the day; under other thresholds a view counts
  the facts again.

The board is a value: its maps are persistent (`immutables.Map`), so an event makes a new
board in O(log n) without copying the day's calls and facts. Calls that ended are kept apart
from the ones in progress, so the views look only at the calls in progress, and
`index_of` works out once what every queue view of a board shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from immutables import Map

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
from callcenter.kpi import (
    KPIS,
    CallFact,
    KpiParams,
    KpiResult,
    KpiTotals,
    add_fact,
    compute_all,
    fact_of_state,
    remove_fact,
    results_of,
    totals_of,
)
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
"""How long an ended call is kept at least, for events that arrive after its end."""
_PRUNE_EVERY = timedelta(minutes=1)
"""Ended calls past the grace are dropped together, once the oldest is this much older."""

_OPENING = (CallStarted, CallQueued, AgentRinging, CallAnswered)
"""Events that may be the first the board sees of a call (others are late news)."""
_UNAVAILABLE = frozenset({DeviceState.INVALID, DeviceState.UNAVAILABLE})
_BUSY = frozenset(
    {DeviceState.IN_USE, DeviceState.BUSY, DeviceState.RING_IN_USE, DeviceState.ON_HOLD}
)

MemberKey = tuple[str, str]
"""(queue, interface)"""

_K = TypeVar("_K")
_V = TypeVar("_V")


def _set(mapping: Mapping[_K, _V], key: _K, value: _V) -> Map[_K, _V]:
    """`mapping` with `key` set (a board built with plain dicts becomes persistent)."""
    return (mapping if isinstance(mapping, Map) else Map(mapping)).set(key, value)


def _drop(mapping: Mapping[_K, _V], key: _K) -> Mapping[_K, _V]:
    if key not in mapping:
        return mapping
    return (mapping if isinstance(mapping, Map) else Map(mapping)).delete(key)


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
    members: Mapping[MemberKey, Member] = field(default_factory=Map)
    calls: Mapping[str, BoardCall] = field(default_factory=Map)
    """The calls in progress."""
    ended: Mapping[str, BoardCall] = field(default_factory=Map)
    """Calls that ended lately (`ENDED_GRACE`), for events that arrive after the end."""
    ended_since: datetime | None = None
    """When the oldest of `ended` ended."""
    facts: Mapping[str, Mapping[str, CallFact]] = field(default_factory=Map)
    """Queue → call key → fact, for the calls that ended on `day`."""
    kpis: Mapping[str, KpiTotals] = field(default_factory=Map)
    """Queue → running totals of its `facts`, under the thresholds of `with_kpi_params`."""

    def followed(self, call_key: str) -> BoardCall | None:
        """The call, in progress or ended lately."""
        return self.calls.get(call_key) or self.ended.get(call_key)


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
        return replace(board, members=_drop(board.members, (event.queue, event.interface)))
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
    return replace(
        board,
        day=day,
        calls=Map(followed),
        ended=Map(),
        ended_since=None,
        facts=Map({queue: Map(by_key) for queue, by_key in by_queue.items()}),
        kpis=Map(),
    )


def with_outcomes(board: LiveBoard, outcomes: Mapping[str, Outcome | None]) -> LiveBoard:
    """The board after operators (or rules) set the outcome of some calls (by call key)."""
    for key, outcome in outcomes.items():
        if (followed := board.calls.get(key)) is not None:
            board = replace(board, calls=_set(board.calls, key, replace(followed, outcome=outcome)))
        if (followed := board.ended.get(key)) is not None:
            board = replace(board, ended=_set(board.ended, key, replace(followed, outcome=outcome)))
        for by_key in list(board.facts.values()):
            if (fact := by_key.get(key)) is not None and fact.outcome != outcome:
                board = _refact(board, fact, replace(fact, outcome=outcome))
    return board


def with_kpi_params(board: LiveBoard, params: Mapping[str, KpiParams]) -> LiveBoard:
    """The board keeping running totals of these queues' KPIs under these thresholds."""
    kpis = board.kpis
    for queue, wanted in params.items():
        totals = kpis.get(queue)
        if totals is None or totals.params != wanted:
            kpis = _set(kpis, queue, totals_of(board.facts.get(queue, {}).values(), wanted))
    return board if kpis is board.kpis else replace(board, kpis=kpis)


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
    queues, agents = touched_by_call(before, event.call_key, after)
    return queues | queues_of_agents(after, agents)


def touched_by_call(
    before: LiveBoard, call_key: str, after: LiveBoard
) -> tuple[set[str], set[str]]:
    """The queue a call went through and the agents it rang or reached, before and after an
    event of it: the queues whose views it may have changed are these queues and the
    agents' (`queues_of_agents`, worked out once for a batch of events)."""
    queues: set[str] = set()
    agents: set[str] = set()
    for board in (before, after):
        followed = board.followed(call_key)
        if followed is not None:
            if followed.state.queue:
                queues.add(followed.state.queue)
            agents.update(followed.rings)
            if followed.state.agent:
                agents.add(followed.state.agent)
    return queues, agents


def queues_of_agents(board: LiveBoard, agents: set[str]) -> set[str]:
    """The queues these agent interfaces are members of."""
    if not agents:
        return set()
    return {queue for queue, interface in board.members if interface in agents}


@dataclass(frozen=True, slots=True)
class Folded:
    """A batch of events folded into a board (`fold`)."""

    board: LiveBoard
    queues: set[str]
    """The queues whose views the batch may have changed."""
    pauses: list[PauseChange]
    """The pauses the batch began or ended, in order."""
    snapshot_at: datetime | None
    """When the batch's last queue snapshot was taken (None: it had none)."""


_NOT_OF_A_CALL = (
    QueueSnapshot,
    MemberAdded,
    MemberPaused,
    MemberStatus,
    MemberRemoved,
    CallerLeftQueue,
)


def fold(board: LiveBoard, events: Iterable[PbxEvent]) -> Folded:
    """`apply_all`, with what the batch changed: the queues of the agents its calls touched
    are looked up once for the whole batch."""
    queues: set[str] = set()
    agents: set[str] = set()
    pauses: list[PauseChange] = []
    snapshot_at: datetime | None = None
    for event in events:
        before = board
        board = apply(board, event)
        pauses.extend(pause_changes(before, event, board))
        if isinstance(event, QueueSnapshot):
            snapshot_at = event.at
        if before is board:
            continue
        if isinstance(event, _NOT_OF_A_CALL) or before.day != board.day:
            queues |= affected_queues(before, event, board)
        else:
            called, reached = touched_by_call(before, event.call_key, board)
            queues |= called
            agents |= reached
    queues |= queues_of_agents(board, agents)
    return Folded(board, queues, pauses, snapshot_at)


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
        kpis = Map({queue: KpiTotals(totals.params) for queue, totals in board.kpis.items()})
        return replace(board, day=day, facts=Map(), kpis=kpis)
    return board


def _on_call(board: LiveBoard, event: CallEvent) -> LiveBoard:
    key = event.call_key
    current = board.followed(key)
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
    if ended:
        board = _with_ended(board, followed, event.at)
    else:
        board = replace(
            board, calls=_set(board.calls, key, followed), ended=_drop(board.ended, key)
        )
    return _refact(
        board,
        fact_of_state(current.state, outcome) if current is not None else None,
        fact_of_state(state, outcome),
    )


def _with_ended(board: LiveBoard, followed: BoardCall, now: datetime) -> LiveBoard:
    """`followed` (ended) moved to the ended calls; those past the grace dropped, a minute's
    worth at a time."""
    key = followed.state.call_key
    ended_at = followed.state.ended_at or now
    ended = _set(board.ended, key, followed)
    since: datetime | None = min(board.ended_since or ended_at, ended_at)
    horizon = now - ENDED_GRACE
    if since is not None and since < horizon - _PRUNE_EVERY:
        ended = Map(
            {
                k: c
                for k, c in ended.items()
                if c.state.ended_at is not None and c.state.ended_at >= horizon
            }
        )
        since = min((c.state.ended_at for c in ended.values() if c.state.ended_at), default=None)
    return replace(board, calls=_drop(board.calls, key), ended=ended, ended_since=since)


def _refact(board: LiveBoard, old: CallFact | None, new: CallFact | None) -> LiveBoard:
    """The board with today's fact `old` replaced by `new` (either may be None), and the
    running totals with it."""
    if old == new:
        return board
    if old is not None:
        board = _unfact(board, old.queue, old.call_key)
    if new is None or local_day(board, new.ended_at) != board.day:
        return board
    # A fact of the same call may be there already (seeded from the records, say).
    board = _unfact(board, new.queue, new.call_key)
    facts = _set(board.facts, new.queue, _set(board.facts.get(new.queue, Map()), new.call_key, new))
    kpis = board.kpis
    if (totals := kpis.get(new.queue)) is not None:
        kpis = _set(kpis, new.queue, add_fact(totals, new))
    return replace(board, facts=facts, kpis=kpis)


def _unfact(board: LiveBoard, queue: str, call_key: str) -> LiveBoard:
    """The board without the fact of `call_key` in `queue` (if there is one)."""
    by_key = board.facts.get(queue, {})
    stored = by_key.get(call_key)
    if stored is None:
        return board
    left = _drop(by_key, call_key)
    kpis = board.kpis
    if (totals := kpis.get(queue)) is not None:
        fewer = remove_fact(totals, stored)
        kpis = _set(kpis, queue, fewer or totals_of(left.values(), totals.params))
    return replace(board, facts=_set(board.facts, queue, left), kpis=kpis)


def _on_left_queue(board: LiveBoard, event: CallerLeftQueue) -> LiveBoard:
    followed = board.calls.get(event.call_key)
    if followed is None or not followed.in_queue or followed.state.queue != event.queue:
        return board
    return replace(
        board, calls=_set(board.calls, event.call_key, replace(followed, in_queue=False))
    )


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
    return replace(board, members=_set(board.members, key, member))


def _on_snapshot(board: LiveBoard, snap: QueueSnapshot) -> LiveBoard:
    members = {
        (view.queue, view.interface): _member_from(
            view, board.members.get((view.queue, view.interface)), snap.at
        )
        for view in snap.members
    }
    waiting = {w.call_key for w in snap.waiting}
    calls_now = board.calls
    for key, followed in board.calls.items():
        if followed.in_queue != (key in waiting):
            calls_now = _set(calls_now, key, replace(followed, in_queue=key in waiting))
    return replace(
        board,
        params={p.queue: p for p in snap.queues},
        members=Map(members),
        calls=calls_now,
    )


# --- what a wallboard shows ---------------------------------------------------------------


def queues_of(board: LiveBoard) -> set[str]:
    """Every queue the board knows of (configured, with members, callers or calls today)."""
    names = set(board.params) | {q for q, _ in board.members} | set(board.facts)
    names.update(c.state.queue for c in board.calls.values() if c.state.queue)
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


def _day_over(board: LiveBoard, now: datetime) -> bool:
    return board.day is None or local_day(board, now) > board.day


def today_facts(board: LiveBoard, queue: str, now: datetime) -> list[CallFact]:
    """The facts the counters are computed from at `now` (none once the day is over)."""
    return [] if _day_over(board, now) else list(board.facts.get(queue, {}).values())


def today_results(
    board: LiveBoard, queue: str, now: datetime, params: KpiParams
) -> dict[str, KpiResult]:
    """Today's KPIs of `queue`: the running totals when kept under `params`, else counted."""
    totals = board.kpis.get(queue)
    if totals is not None and totals.params == params and not _day_over(board, now):
        return results_of(totals)
    return compute_all(today_facts(board, queue, now), params)


def kpi_values(facts: list[CallFact], params: KpiParams) -> dict[str, KpiValue]:
    return values_of(compute_all(facts, params), params)


def values_of(results: Mapping[str, KpiResult], params: KpiParams) -> dict[str, KpiValue]:
    definitions = _definitions(params)
    return {
        kpi.key: KpiValue(
            key=kpi.key,
            value=results[kpi.key].value,
            numerator=results[kpi.key].numerator,
            denominator=results[kpi.key].denominator,
            definition=definitions[kpi.key],
        )
        for kpi in KPIS
    }


@lru_cache(maxsize=256)
def _definitions(params: KpiParams) -> dict[str, KpiDefinition]:
    """The registry as screens show it, under these thresholds (the same for every view)."""
    placeholders = {"t": params.service_level_s, "n": params.short_abandon_s}
    return {
        kpi.key: KpiDefinition(
            key=kpi.key,
            unit=kpi.unit,
            name_key=kpi.name_key,
            formula_key=kpi.formula_key,
            numerator_key=kpi.numerator_key,
            denominator_key=kpi.denominator_key,
            short_call_rule_key=kpi.short_call_rule_key,
            params=placeholders,
        )
        for kpi in KPIS
    }


def _seconds(since: datetime, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds())


class _Activity(NamedTuple):  # a tuple: made for every call in progress at every publish
    state: AgentState
    since: datetime | None
    call: CallState


@dataclass(frozen=True, slots=True)
class BoardIndex:
    """What every queue view of one board shares, worked out once for all of them."""

    activity: Mapping[str, _Activity]
    """Agent interface → what it does on the calls in progress."""
    members: Mapping[str, list[Member]]
    """Queue → its members, in the order a wallboard lists them."""
    waiting: Mapping[str, list[CallState]]
    """Queue → the callers waiting in it, next to be served first."""


def index_of(board: LiveBoard) -> BoardIndex:
    members: dict[str, list[Member]] = {}
    for (queue, _), member in board.members.items():
        members.setdefault(queue, []).append(member)
    for listed in members.values():
        listed.sort(key=lambda m: (m.name or m.interface, m.interface))
    waiting: dict[str, list[CallState]] = {}
    for followed in board.calls.values():
        if followed.in_queue and followed.state.queue:
            waiting.setdefault(followed.state.queue, []).append(followed.state)
    for callers in waiting.values():
        callers.sort(key=lambda s: (s.queued_at or s.started_at or _NEVER, s.call_key))
    return BoardIndex(agent_activity(board), members, waiting)


_NEVER = datetime.max.replace(tzinfo=UTC)
"""Sorts a caller with no known times last."""


def waiting_callers(
    board: LiveBoard, queue: str, now: datetime, index: BoardIndex | None = None
) -> list[WaitingCaller]:
    out = []
    callers = (index or index_of(board)).waiting.get(queue, [])
    for position, state in enumerate(callers, start=1):
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


def agent_activity(board: LiveBoard) -> dict[str, _Activity]:
    """What each agent interface does on the calls in progress."""
    found: dict[str, _Activity] = {}
    for followed in sorted(board.calls.values(), key=lambda c: c.state.call_key):
        state = followed.state
        if state.agent is not None and state.answered_at is not None:
            since = followed.agent_since or state.answered_at
            found[state.agent] = _Activity(AgentState.IN_CALL, since, state)
        for agent, ring_since in followed.rings.items():
            known = found.get(agent)
            if known is None or (
                known.state is AgentState.RINGING and _rang_earlier(ring_since, known.since)
            ):
                found[agent] = _Activity(AgentState.RINGING, ring_since, state)
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
        call = activity.call
        shown = AgentCall(
            call_key=call.call_key,
            caller_num=call.caller_num,
            caller_name=call.caller_name,
            queue=call.queue,
            since=activity.since,
        )
        return activity.state, activity.since, shown
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
    index: BoardIndex | None = None,
) -> QueueView:
    """One queue at `now`. `kpis` may be given when already computed for the same facts;
    `index` when several queues of the board are shown at once (`index_of(board)`)."""
    params = kpi_params(board, queue, targets, defaults)
    if kpis is None:
        kpis = values_of(today_results(board, queue, now, params), params)
    index = index or index_of(board)
    waiting = waiting_callers(board, queue, now, index)
    agents = [agent_view(m, index.activity.get(m.interface)) for m in index.members.get(queue, [])]
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
    views: list[QueueView] = []
    for board in sorted(boards, key=lambda b: b.pbx):
        index = index_of(board)
        views.extend(
            queue_view(board, queue, now, targets.get(queue, QueueTargets()), defaults, index=index)
            for queue in sorted(queues_of(board))
        )
    return BoardSnapshot(
        at=now, timezone=timezone, day=now.astimezone(ZoneInfo(timezone)).date(), queues=views
    )
