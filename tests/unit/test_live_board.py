"""The live queue board as a pure fold: callers waiting, agents, pauses, counters, the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from callcenter.calls.models import Outcome
from callcenter.calls.state import CallState, CallStatus
from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallerLeftQueue,
    CallQueued,
    CallStarted,
    DeviceState,
    Direction,
    EndReason,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
    MemberStatus,
    MemberView,
    PbxEvent,
    QueueParams,
    QueueSnapshot,
    StopRingReason,
    WaitingView,
)
from callcenter.kpi import CallFact, KpiParams, compute_all
from callcenter.queues import live
from callcenter.queues.live import LiveBoard, QueueTargets
from callcenter.queues.schemas import AgentState, Alarm, QueueView

PBX = "lab"
MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
A101, A102, A104, A105 = (f"Local/{n}@agents" for n in (101, 102, 104, 105))
_ids = count(1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _id() -> str:
    return f"e{next(_ids)}"


def started(key: str, t: float, num: str = "+79161234567", name: str = "Иван") -> CallStarted:
    return CallStarted(
        pbx=PBX,
        call_key=key,
        event_id=_id(),
        at=at(t),
        direction=Direction.INBOUND,
        caller_num=num,
        caller_name=name,
    )


def queued(key: str, t: float, queue: str = "support") -> CallQueued:
    return CallQueued(pbx=PBX, call_key=key, event_id=_id(), at=at(t), queue=queue)


def ringing(key: str, t: float, agent: str, queue: str = "support") -> AgentRinging:
    return AgentRinging(pbx=PBX, call_key=key, event_id=_id(), at=at(t), agent=agent, queue=queue)


def answered(key: str, t: float, agent: str, queue: str = "support") -> CallAnswered:
    return CallAnswered(pbx=PBX, call_key=key, event_id=_id(), at=at(t), agent=agent, queue=queue)


def ended(key: str, t: float, reason: EndReason = EndReason.COMPLETED) -> CallEnded:
    return CallEnded(pbx=PBX, call_key=key, event_id=_id(), at=at(t), reason=reason)


def member(
    interface: str,
    queue: str = "support",
    *,
    device: DeviceState = DeviceState.NOT_IN_USE,
    paused: bool = False,
    reason: str = "",
    since: datetime | None = None,
) -> MemberView:
    return MemberView(
        queue=queue,
        interface=interface,
        name=f"Оператор {interface[6:9]}",
        device=device,
        paused=paused,
        pause_reason=reason,
        paused_since=since,
    )


def snapshot_event(t: float, *members: MemberView, waiting: tuple[str, ...] = ()) -> QueueSnapshot:
    return QueueSnapshot(
        pbx=PBX,
        event_id=_id(),
        at=at(t),
        queues=(
            QueueParams(queue="support", strategy="rrmemory", service_level_s=20),
            QueueParams(queue="sales", strategy="ringall", service_level_s=30),
        ),
        members=members,
        waiting=tuple(WaitingView(queue="support", call_key=k) for k in waiting),
    )


def board_with(*events: PbxEvent) -> LiveBoard:
    start = snapshot_event(
        0, member(A101), member(A102), member(A104, "sales"), member(A105, "sales")
    )
    return live.apply_all(LiveBoard(pbx=PBX, tz=MSK), [start, *events])


def view(board: LiveBoard, queue: str, t: float, **targets: object) -> QueueView:
    return live.queue_view(
        board,
        queue,
        at(t),
        QueueTargets(**targets),
        live.BoardDefaults(),  # type: ignore[arg-type]
    )


def agent(v: QueueView, interface: str) -> tuple[AgentState, str | None, datetime | None]:
    (found,) = [a for a in v.agents if a.interface == interface]
    return found.state, found.call.call_key if found.call else None, found.since


# --- callers waiting ----------------------------------------------------------------------


def test_given_callers_in_a_queue_then_they_wait_in_order_with_their_waits_at_now() -> None:
    board = board_with(
        started("c1", 1, "+79160000001", "Анна"),
        queued("c1", 2),
        started("c2", 5),
        queued("c2", 6),
    )

    support = view(board, "support", 30)

    assert [(w.call_key, w.position, w.wait_s) for w in support.waiting] == [
        ("c1", 1, 28.0),
        ("c2", 2, 24.0),
    ]
    assert (support.waiting[0].caller_num, support.waiting[0].caller_name) == (
        "+79160000001",
        "Анна",
    )
    assert support.longest_wait_s == 28.0
    assert view(board, "sales", 30).waiting == []


def test_given_the_first_caller_answered_then_the_next_moves_up_and_the_agent_talks() -> None:
    board = board_with(
        started("c1", 1),
        queued("c1", 2),
        started("c2", 5),
        queued("c2", 6),
        ringing("c1", 7, A101),
        answered("c1", 10, A101),
    )

    support = view(board, "support", 20)

    assert [(w.call_key, w.position) for w in support.waiting] == [("c2", 1)]
    assert agent(support, A101) == (AgentState.IN_CALL, "c1", at(10))
    assert support.agents_idle == 1


def test_given_a_caller_left_the_queue_but_is_still_on_the_line_then_they_no_longer_wait() -> None:
    left = CallerLeftQueue(pbx=PBX, event_id=_id(), at=at(50), queue="support", call_key="c1")
    board = board_with(started("c1", 1), queued("c1", 2), left)

    assert view(board, "support", 60).waiting == []
    assert board.calls["c1"].state.status is CallStatus.QUEUED


# --- agents -------------------------------------------------------------------------------


def test_given_a_ringall_queue_then_every_member_rings_until_one_answers() -> None:
    board = board_with(
        started("s1", 0, name="ООО Ромашка"),
        queued("s1", 1, "sales"),
        ringing("s1", 1.5, A104, "sales"),
        ringing("s1", 1.5, A105, "sales"),
    )
    sales = view(board, "sales", 3)
    assert agent(sales, A104) == (AgentState.RINGING, "s1", at(1.5))
    assert agent(sales, A105) == (AgentState.RINGING, "s1", at(1.5))
    ringing_call = next(a.call for a in sales.agents if a.call)
    assert ringing_call is not None
    assert ringing_call.caller_name == "ООО Ромашка"

    board = live.apply(board, answered("s1", 4, A105, "sales"))

    sales = view(board, "sales", 5)
    assert agent(sales, A105) == (AgentState.IN_CALL, "s1", at(4))
    assert agent(sales, A104) == (AgentState.IDLE, None, at(0))


def test_given_a_member_stops_ringing_then_they_are_idle_again() -> None:
    stop = AgentStoppedRinging(
        pbx=PBX,
        call_key="c1",
        event_id=_id(),
        at=at(9),
        agent=A101,
        reason=StopRingReason.NO_ANSWER,
        queue="support",
    )
    board = board_with(started("c1", 0), queued("c1", 1), ringing("c1", 2, A101), stop)

    assert agent(view(board, "support", 10), A101)[0] is AgentState.IDLE


def test_given_a_paused_member_then_they_show_the_reason_and_since_when() -> None:
    lunch = MemberPaused(
        pbx=PBX,
        event_id=_id(),
        at=at(100),
        queue="support",
        member=member(A102, paused=True, reason="Обед", since=at(99)),
    )
    board = board_with(lunch)

    found = next(a for a in view(board, "support", 200).agents if a.interface == A102)
    assert (found.state, found.pause_reason, found.since, found.paused_since) == (
        AgentState.PAUSED,
        "Обед",
        at(99),
        at(99),
    )


def test_given_a_paused_member_who_takes_a_call_then_the_call_wins_and_the_pause_stays() -> None:
    lunch = MemberPaused(
        pbx=PBX,
        event_id=_id(),
        at=at(100),
        queue="support",
        member=member(A101, paused=True, reason="Обед"),
    )
    board = board_with(started("c1", 90), queued("c1", 91), answered("c1", 95, A101), lunch)

    found = next(a for a in view(board, "support", 120).agents if a.interface == A101)
    assert (found.state, found.paused, found.pause_reason) == (AgentState.IN_CALL, True, "Обед")
    assert found.paused_since == at(100)


def test_given_device_states_then_unavailable_and_busy_members_show_so() -> None:
    gone = MemberStatus(
        pbx=PBX,
        event_id=_id(),
        at=at(5),
        queue="support",
        member=member(A101, device=DeviceState.UNAVAILABLE),
    )
    busy = MemberStatus(
        pbx=PBX,
        event_id=_id(),
        at=at(6),
        queue="support",
        member=member(A102, device=DeviceState.IN_USE),
    )
    board = board_with(gone, busy)

    support = view(board, "support", 10)
    assert agent(support, A101) == (AgentState.UNAVAILABLE, None, at(5))
    assert agent(support, A102) == (AgentState.IN_CALL, None, at(6))


def test_given_members_added_and_removed_then_the_queue_lists_exactly_them() -> None:
    added = MemberAdded(
        pbx=PBX, event_id=_id(), at=at(1), queue="support", member=member("PJSIP/201")
    )
    removed = MemberRemoved(pbx=PBX, event_id=_id(), at=at(2), queue="support", interface=A101)
    board = board_with(added, removed)

    assert [a.interface for a in view(board, "support", 3).agents] == [A102, "PJSIP/201"]


def test_given_an_agent_in_two_queues_then_their_call_shows_in_both() -> None:
    second = MemberAdded(
        pbx=PBX, event_id=_id(), at=at(1), queue="sales", member=member(A101, "sales")
    )
    board = board_with(second, started("c1", 2), queued("c1", 3), answered("c1", 5, A101))

    assert agent(view(board, "sales", 6), A101)[:2] == (AgentState.IN_CALL, "c1")


def test_given_a_new_snapshot_then_members_and_waiting_callers_are_replaced() -> None:
    board = board_with(started("c1", 1), queued("c1", 2), started("c2", 3), queued("c2", 4))
    later = snapshot_event(
        60,
        member(A102, paused=True, reason="Обучение", since=at(50)),
        waiting=("c2",),
    )

    board = live.apply(board, later)

    support = view(board, "support", 61)
    assert [a.interface for a in support.agents] == [A102]
    assert support.agents[0].state is AgentState.PAUSED
    assert [w.call_key for w in support.waiting] == ["c2"]


def test_given_pause_events_then_pause_changes_say_when_each_pause_began_and_ended() -> None:
    board = board_with()
    pause = MemberPaused(
        pbx=PBX,
        event_id=_id(),
        at=at(10),
        queue="support",
        member=member(A102, paused=True, reason="Обед", since=at(10)),
    )
    unpause = MemberPaused(pbx=PBX, event_id=_id(), at=at(70), queue="support", member=member(A102))
    changes = []
    for event in (pause, unpause):
        before, board = board, live.apply(board, event)
        changes.extend(live.pause_changes(before, event, board))

    assert [(c.interface, c.paused, c.reason, c.at) for c in changes] == [
        (A102, True, "Обед", at(10)),
        (A102, False, "", at(70)),
    ]


# --- counters -----------------------------------------------------------------------------


def _call(
    key: str, t: float, *, wait: float, talk: float | None, agent: str = A101
) -> list[PbxEvent]:
    events: list[PbxEvent] = [started(key, t), queued(key, t)]
    if talk is None:
        return [*events, ended(key, t + wait, EndReason.ABANDONED)]
    return [*events, answered(key, t + wait, agent), ended(key, t + wait + talk)]


def test_given_ended_calls_then_todays_counters_follow_the_registry() -> None:
    board = board_with(
        *_call("a", 0, wait=5, talk=60),
        *_call("b", 100, wait=30, talk=20),
        *_call("c", 200, wait=2, talk=None),  # a short abandon
        *_call("d", 300, wait=25, talk=None),
    )

    kpis = {k: v.value for k, v in view(board, "support", 400).kpis.items()}

    assert (kpis["offered"], kpis["answered"], kpis["abandoned"]) == (4, 2, 2)
    assert kpis["service_level"] == 100 / 3  # "a" of a, b, d ("c" is short)
    assert kpis["asa"] == 17.5
    assert kpis["average_talk"] == 40
    assert kpis["longest_wait"] == 30


def test_given_a_kpi_then_its_definition_comes_with_the_value() -> None:
    board = board_with(*_call("a", 0, wait=5, talk=60))

    level = view(board, "support", 100, service_level_s=15).kpis["service_level"]

    assert level.definition.formula_key == "kpi.service_level.formula"
    assert level.definition.params == {"t": 15.0, "n": 5.0}
    assert level.definition.short_call_rule_key == "kpi.short_call_rule"


def test_given_a_call_marked_wrong_number_then_it_leaves_the_service_level() -> None:
    board = board_with(*_call("a", 0, wait=5, talk=60), *_call("b", 100, wait=40, talk=20))
    assert view(board, "support", 200).kpis["service_level"].value == 50

    board = live.with_outcomes(board, {"b": Outcome.WRONG_NUMBER})

    assert view(board, "support", 200).kpis["service_level"].value == 100


def test_given_an_answer_that_arrives_after_the_hangup_then_the_counters_follow_the_record() -> (
    None
):
    board = board_with(started("x", 0), queued("x", 1), ended("x", 30, EndReason.ABANDONED))
    assert view(board, "support", 31).kpis["abandoned"].value == 1

    board = live.apply(board, answered("x", 8, A101))

    kpis = view(board, "support", 31).kpis
    assert (kpis["abandoned"].value, kpis["answered"].value) == (0, 1)
    assert agent(view(board, "support", 31), A101)[0] is AgentState.IDLE


def _counted(board: LiveBoard, t: float, params: KpiParams) -> dict[str, float | None]:
    facts = live.today_facts(board, "support", at(t))
    return {k: r.value for k, r in compute_all(facts, params).items()}


def _running(board: LiveBoard, t: float, params: KpiParams) -> dict[str, float | None]:
    totals = board.kpis["support"]
    assert totals.params == params  # the figures below are the running totals, not a recount
    return {k: r.value for k, r in live.today_results(board, "support", at(t), params).items()}


def test_given_running_totals_then_they_follow_every_change_of_todays_facts() -> None:
    params = KpiParams(service_level_s=20, short_abandon_s=5)
    board = live.with_kpi_params(board_with(*_call("a", 0, wait=5, talk=60)), {"support": params})
    changes: list[PbxEvent] = [
        *_call("b", 100, wait=30, talk=20),
        *_call("c", 200, wait=2, talk=None),  # a short abandon
        started("x", 300),
        queued("x", 301),
        ended("x", 330, EndReason.ABANDONED),
        answered("x", 308, A101),  # late: "x" was answered after all
    ]

    for event in changes:
        board = live.apply(board, event)
        assert _running(board, 400, params) == _counted(board, 400, params)
    board = live.with_outcomes(board, {"b": Outcome.WRONG_NUMBER, "x": Outcome.SALE})

    assert _running(board, 400, params) == _counted(board, 400, params)
    assert _running(board, 400, params)["longest_wait"] == 30  # "b" is short now, still waited
    board = live.with_kpi_params(board, {"support": KpiParams(service_level_s=3)})
    assert board.kpis["support"].params.service_level_s == 3


def test_given_a_seeded_call_seen_again_then_its_fact_is_replaced_not_counted_twice() -> None:
    params = KpiParams()
    events = _call("a", 0, wait=5, talk=60)
    seeded_fact = CallFact("a", "support", at(65), EndReason.COMPLETED, True, 5.0, 60.0)
    seeded = live.seed(LiveBoard(pbx=PBX, tz=MSK), [], [seeded_fact], day=at(0).date())
    board = live.with_kpi_params(seeded, {"support": params})

    board = live.apply_all(board, events)  # the batch the records were seeded from, again

    assert _running(board, 100, params)["offered"] == 1
    assert _running(board, 100, params) == _counted(board, 100, params)


def test_given_an_ended_call_then_late_news_of_it_counts_until_the_grace_is_long_over() -> None:
    board = board_with(started("x", 0), queued("x", 1), ended("x", 30, EndReason.ABANDONED))
    assert "x" not in board.calls
    assert "x" in board.ended

    still = live.apply(board, answered("x", 8, A101))
    assert view(still, "support", 40).kpis["answered"].value == 1

    later = live.apply_all(board, _call("y", 30 + 7 * 60, wait=3, talk=10))
    too_late = live.apply(later, answered("x", 8, A101))
    assert "x" not in later.ended
    assert view(too_late, "support", 900).kpis["answered"].value == 1  # "y" only


def test_given_a_batch_then_fold_names_the_queues_each_event_may_have_changed() -> None:
    second = MemberAdded(
        pbx=PBX, event_id=_id(), at=at(1), queue="sales", member=member(A101, "sales")
    )
    start = board_with(second)
    events = [started("c1", 2), queued("c1", 3), ringing("c1", 4, A101), answered("c1", 5, A101)]

    folded = live.fold(start, events)

    one_by_one: set[str] = set()
    board = start
    for event in events:
        before, board = board, live.apply(board, event)
        one_by_one |= live.affected_queues(before, event, board)
    assert folded.queues == one_by_one == {"support", "sales"}
    assert folded.board == board


def test_given_midnight_passes_then_the_counters_start_again() -> None:
    before_midnight = datetime(2026, 11, 29, 20, 50, tzinfo=UTC)  # 23:50 in Moscow
    offset = (before_midnight - T0).total_seconds()
    board = board_with(*_call("late", offset, wait=5, talk=60))
    assert view(board, "support", offset + 100).kpis["offered"].value == 1

    # no event yet, but a wallboard asking after midnight sees a new day
    after = offset + 20 * 60
    assert view(board, "support", after).kpis["offered"].value == 0
    assert view(board, "support", after).day.isoformat() == "2026-11-30"

    board = live.apply_all(board, _call("early", after, wait=3, talk=30))
    assert board.day is not None
    assert board.day.isoformat() == "2026-11-30"
    kpis = view(board, "support", after + 100).kpis
    assert (kpis["offered"].value, kpis["asa"].value) == (1, 3)


def test_given_a_restart_then_the_board_is_seeded_from_the_records() -> None:
    open_call = CallState(
        pbx=PBX,
        call_key="w",
        status=CallStatus.QUEUED,
        caller_num="84951234567",
        queue="support",
        started_at=at(0),
        queued_at=at(1),
    )
    talking = CallState(
        pbx=PBX,
        call_key="t",
        status=CallStatus.ANSWERED,
        queue="support",
        agent=A101,
        started_at=at(0),
        queued_at=at(1),
        answered_at=at(4),
    )
    yesterday = CallFact("y", "support", at(-86400), EndReason.COMPLETED, True, 3.0, 20.0)
    today = CallFact("d", "support", at(-60), EndReason.COMPLETED, True, 9.0, 20.0)

    board = live.seed(
        LiveBoard(pbx=PBX, tz=MSK),
        [open_call, talking],
        [yesterday, today],
        day=T0.astimezone(MSK).date(),
    )
    board = live.apply(board, snapshot_event(10, member(A101), waiting=("w",)))

    support = view(board, "support", 20)
    assert [(w.call_key, w.wait_s) for w in support.waiting] == [("w", 19.0)]
    assert agent(support, A101) == (AgentState.IN_CALL, "t", at(4))
    assert support.kpis["offered"].value == 1
    assert support.kpis["asa"].value == 9


# --- alarms -------------------------------------------------------------------------------


def test_given_thresholds_then_alarms_rise_when_they_are_crossed() -> None:
    board = board_with(
        *_call("slow", 0, wait=50, talk=10),
        started("w", 100),
        queued("w", 100),
        started("t", 90),
        queued("t", 90),
        answered("t", 95, A101),
        MemberPaused(
            pbx=PBX,
            event_id=_id(),
            at=at(96),
            queue="support",
            member=member(A102, paused=True, reason="Обед"),
        ),
    )

    quiet = view(board, "support", 110, alarm_no_agent=False)
    loud = view(
        board,
        "support",
        200,
        alarm_longest_wait_s=60,
        alarm_service_level_pct=80,
        alarm_no_agent=True,
    )

    assert quiet.alarms == []
    assert loud.alarms == [Alarm.LONGEST_WAIT, Alarm.SERVICE_LEVEL, Alarm.NO_AGENT]


def test_given_events_of_a_call_then_affected_queues_name_its_queue_and_its_agents_queues() -> None:
    second = MemberAdded(
        pbx=PBX, event_id=_id(), at=at(1), queue="sales", member=member(A101, "sales")
    )
    board = board_with(second, started("c1", 2), queued("c1", 3))
    event = answered("c1", 5, A101)

    after = live.apply(board, event)

    assert live.affected_queues(board, event, after) == {"support", "sales"}
