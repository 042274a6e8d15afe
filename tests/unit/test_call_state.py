"""The pure call state machine: transitions, idempotence, monotonicity, effects."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.calls.state import (
    CallState,
    CallStatus,
    Connected,
    Effect,
    Finished,
    RingStarted,
    RingStopped,
    apply,
)
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

T0 = datetime(2026, 11, 28, 22, 0, 0, tzinfo=UTC)
KEY = "1795906366.1"
A101, A102, A103 = "Local/101@agents", "Local/102@agents", "Local/103@agents"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(s: float = 0) -> CallStarted:
    return CallStarted(
        call_key=KEY,
        event_id="start",
        at=at(s),
        direction=Direction.INBOUND,
        caller_num="+79161234567",
        caller_name="Иван",
        callee_num="8001",
    )


def queued(s: float = 1, queue: str = "support") -> CallQueued:
    return CallQueued(call_key=KEY, event_id=f"queued-{queue}", at=at(s), queue=queue, position=1)


def ringing(agent: str, s: float = 2) -> AgentRinging:
    return AgentRinging(
        call_key=KEY, event_id=f"ring-{agent}-{s}", at=at(s), agent=agent, queue="support"
    )


def stopped(agent: str, reason: StopRingReason, s: float = 5) -> AgentStoppedRinging:
    return AgentStoppedRinging(
        call_key=KEY, event_id=f"stop-{agent}-{s}", at=at(s), agent=agent, reason=reason
    )


def answered(agent: str = A101, s: float = 6) -> CallAnswered:
    return CallAnswered(
        call_key=KEY,
        event_id=f"answer-{agent}",
        at=at(s),
        agent=agent,
        agent_name="Оператор " + agent[6:9],
        queue="support",
    )


def ended(
    s: float = 20, reason: EndReason = EndReason.COMPLETED, by: Party | None = Party.CALLER
) -> CallEnded:
    return CallEnded(call_key=KEY, event_id=f"end-{s}", at=at(s), reason=reason, ended_by=by)


def run(events: list[CallEvent], call: CallState | None = None) -> tuple[CallState, list[Effect]]:
    effects: list[Effect] = []
    for event in events:
        call, produced = apply(call, event)
        effects.extend(produced)
    assert call is not None
    return call, effects


ANSWERED_CALL: list[CallEvent] = [
    started(),
    queued(),
    ringing(A101),
    answered(),
    RecordingStarted(call_key=KEY, event_id="rec", at=at(0.5), file=f"{KEY}.wav"),
    ended(),
]


def test_given_a_queued_answered_call_when_applied_then_it_ends_completed_with_times() -> None:
    call, effects = run(ANSWERED_CALL)

    assert call.status is CallStatus.ENDED
    assert (call.caller_num, call.caller_name, call.callee_num) == ("+79161234567", "Иван", "8001")
    assert (call.queue, call.agent, call.agent_name) == ("support", A101, "Оператор 101")
    assert (call.end_reason, call.ended_by, call.recording) == (
        EndReason.COMPLETED,
        Party.CALLER,
        f"{KEY}.wav",
    )
    assert call.wait_seconds == 5.0
    assert call.talk_seconds == 14.0
    assert effects == [RingStarted(A101), Connected(A101), Finished(A101)]


def test_given_each_event_applied_twice_when_folded_then_nothing_changes_and_nothing_is_said() -> (
    None
):
    once, _ = run(ANSWERED_CALL)
    call: CallState | None = None
    for event in ANSWERED_CALL:
        call, _ = apply(call, event)
        again, effects = apply(call, event)
        assert again == call
        assert effects == []

    assert call == once


def test_given_the_whole_sequence_applied_again_when_folded_then_the_state_is_the_same() -> None:
    once, _ = run(ANSWERED_CALL)

    twice, effects = run(ANSWERED_CALL, once)

    assert twice == once
    assert effects == []


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_given_events_in_any_order_when_folded_then_status_times_and_outcome_agree(
    order: tuple[int, ...],
) -> None:
    events: list[CallEvent] = [started(), queued(), answered(), ended()]

    call, _ = run([events[i] for i in order])

    assert call.status is CallStatus.ENDED
    assert call.end_reason is EndReason.COMPLETED
    assert (call.started_at, call.queued_at, call.answered_at, call.ended_at) == (
        at(0),
        at(1),
        at(6),
        at(20),
    )
    assert call.agent == A101
    assert call.caller_num == "+79161234567"


def test_given_a_later_status_when_an_earlier_event_arrives_then_status_never_goes_back() -> None:
    call, _ = run([started(), answered()])

    call, effects = apply(call, queued(s=1))

    assert call.status is CallStatus.ANSWERED
    assert call.queued_at == at(1)
    assert effects == []


def test_given_an_event_with_an_earlier_time_when_applied_then_started_at_only_moves_earlier() -> (
    None
):
    call, _ = run([queued(s=3)])
    assert call.started_at == at(3)

    call, _ = apply(call, started(s=1))
    call, _ = apply(call, ended(s=9, reason=EndReason.ABANDONED, by=None))

    assert call.started_at == at(1)


def test_given_ringall_when_one_agent_answers_then_the_others_stop_ringing_elsewhere() -> None:
    call, effects = run([started(), queued(), ringing(A101), ringing(A102), ringing(A103)])
    assert effects == [RingStarted(A101), RingStarted(A102), RingStarted(A103)]
    assert call.ringing_agents == {A101, A102, A103}

    call, effects = apply(call, answered(A102))

    assert effects == [
        RingStopped(A101, StopRingReason.ANSWERED_ELSEWHERE),
        RingStopped(A103, StopRingReason.ANSWERED_ELSEWHERE),
        Connected(A102),
    ]
    assert call.ringing_agents == frozenset()
    # The PBX's own "stopped" reports that follow change nothing more.
    call, effects = apply(call, stopped(A101, StopRingReason.ANSWERED_ELSEWHERE))
    assert effects == []


def test_given_an_agent_that_did_not_answer_when_rung_again_then_the_card_pops_again() -> None:
    call, _ = run([started(), queued(), ringing(A101, s=2)])

    call, first = apply(call, stopped(A101, StopRingReason.NO_ANSWER, s=10))
    call, second = apply(call, ringing(A101, s=15))

    assert first == [RingStopped(A101, StopRingReason.NO_ANSWER)]
    assert second == [RingStarted(A101)]


def test_given_an_answered_call_when_another_agent_rings_then_it_is_ignored() -> None:
    call, _ = run([started(), queued(), ringing(A101), answered(A101)])

    after, effects = apply(call, ringing(A102, s=7))

    assert after == call
    assert effects == []


def test_given_a_ringing_call_when_the_caller_leaves_then_rings_stop_and_it_is_finished() -> None:
    call, _ = run([started(), queued(), ringing(A101), ringing(A102)])

    call, effects = apply(call, ended(s=9, reason=EndReason.ABANDONED, by=None))

    assert effects == [
        RingStopped(A101, StopRingReason.CALLER_LEFT),
        RingStopped(A102, StopRingReason.CALLER_LEFT),
        Finished(None),
    ]
    assert (call.status, call.end_reason, call.ringing_agents) == (
        CallStatus.ENDED,
        EndReason.ABANDONED,
        frozenset(),
    )
    assert call.wait_seconds == 8.0
    assert call.talk_seconds is None


def test_given_an_ended_call_when_a_late_answer_arrives_then_it_fills_the_gap_silently() -> None:
    call, _ = run([started(), queued(), ended(s=20, reason=EndReason.ABANDONED, by=None)])

    call, effects = apply(call, answered(A103, s=6))

    assert effects == []
    assert call.status is CallStatus.ENDED
    assert call.end_reason is EndReason.COMPLETED
    assert (call.agent, call.answered_at) == (A103, at(6))
    assert call.wait_seconds == 5.0
    assert call.talk_seconds == 14.0


def test_given_an_ended_call_when_a_second_end_arrives_then_the_first_one_stands() -> None:
    call, _ = run([started(), ended(s=5, reason=EndReason.CALLER_HANGUP, by=None)])

    after, effects = apply(call, ended(s=30, reason=EndReason.FAILED))

    assert after == call
    assert effects == []


def test_given_an_answered_call_when_the_end_reports_another_reason_then_it_is_completed() -> None:
    call, _ = run([started(), answered(), ended(reason=EndReason.ABANDONED, by=Party.AGENT)])

    assert call.end_reason is EndReason.COMPLETED
    assert call.ended_by is Party.AGENT


def test_given_an_answered_call_when_transferred_then_the_new_agent_and_name_take_over() -> None:
    call, _ = run([started(), answered(A101)])
    transfer = CallTransferred(
        call_key=KEY,
        event_id="xfer",
        at=at(10),
        from_agent=A101,
        to_agent=A102,
        to_agent_name="Оператор 102",
    )

    call, effects = apply(call, transfer)

    assert effects == [RingStopped(A101, StopRingReason.TRANSFERRED), Connected(A102)]
    assert (call.agent, call.agent_name) == (A102, "Оператор 102")
    assert apply(call, transfer) == (call, [])


def test_given_a_blind_transfer_to_a_number_when_applied_then_the_agent_stays() -> None:
    call, _ = run([started(), answered(A101)])
    blind = CallTransferred(call_key=KEY, event_id="b", at=at(9), from_agent=A101, to_number="8004")

    after, effects = apply(call, blind)

    assert after == call
    assert effects == []


def test_given_two_recordings_when_applied_then_the_first_file_is_kept() -> None:
    first = RecordingStarted(call_key=KEY, event_id="r1", at=at(1), file="a.wav")
    second = RecordingStarted(call_key=KEY, event_id="r2", at=at(2), file="b.wav")

    call, _ = run([started(), first, second])

    assert call.recording == "a.wav"


def test_given_no_event_yet_when_the_first_one_is_not_a_start_then_a_call_is_created() -> None:
    call, effects = apply(None, ended(s=4, reason=EndReason.CALLER_HANGUP, by=None))

    assert (call.call_key, call.status, call.started_at, call.ended_at) == (
        KEY,
        CallStatus.ENDED,
        at(4),
        at(4),
    )
    assert effects == [Finished(None)]
    call, _ = apply(call, started(s=0))
    assert (call.caller_num, call.started_at) == ("+79161234567", at(0))
