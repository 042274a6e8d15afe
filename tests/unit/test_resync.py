"""Reconciliation after an AMI (re)connect: snapshot → events + translator state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callcenter.calls.state import CallState, CallStatus
from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
    StopRingReason,
)
from pbx_adapter.frames import Frame
from pbx_adapter.resync import (
    LiveChannel,
    QueueCaller,
    Snapshot,
    reconcile,
    snapshot_from_frames,
)
from pbx_adapter.translate import CallTrack, TranslatorState, translate
from tests.helpers_ami import (
    ARRIVAL,
    OUTCOME_REASON,
    PBX,
    STREAMS,
    Calls,
    Recording,
    fold,
    recording,
    snapshot_frames,
    translate_all,
)

NOW = datetime(2026, 11, 28, 23, 0, 0, tzinfo=UTC)
TRUNK = "IAX2/127.0.0.1:4570-1"


def _open(key: str, **fields: Any) -> CallState:
    return CallState(pbx=PBX, call_key=key, started_at=NOW - timedelta(minutes=1), **fields)


def _trunk(key: str, **fields: Any) -> LiveChannel:
    values: dict[str, Any] = {
        "uniqueid": key,
        "linkedid": key,
        "channel": TRUNK,
        "state": "Up",
        "context": "trunk-in",
        "exten": "8001",
        "caller_num": "+79161234567",
        "caller_name": "Иван",
        "duration_s": 30,
    }
    values.update(fields)
    return LiveChannel(**values)


# --- snapshot parsing ---------------------------------------------------------------------


def test_given_core_show_channels_and_queue_status_frames_when_parsed_then_snapshot_holds_them() -> (  # noqa: E501
    None
):
    frames: list[Frame] = [
        {"Response": "Success", "ActionID": "1", "EventList": "start"},
        {
            "Event": "CoreShowChannel",
            "Channel": TRUNK,
            "Uniqueid": "5.1",
            "Linkedid": "5.1",
            "ChannelStateDesc": "Up",
            "CallerIDNum": "+79161234567",
            "CallerIDName": "Иван",
            "Context": "trunk-in",
            "Exten": "8001",
            "Application": "Queue",
            "BridgeId": "",
            "Duration": "00:01:05",
        },
        {
            "Event": "CoreShowChannel",
            "Channel": "Local/101@agents-00000001;1",
            "Uniqueid": "5.2",
            "Linkedid": "5.1",
            "ChannelStateDesc": "Ringing",
            "Duration": "garbage",
        },
        {"Event": "CoreShowChannelsComplete", "ListItems": "2"},
        {"Event": "QueueMember", "Queue": "support", "Name": "Оператор 101", "Location": "L/1"},
        {"Event": "QueueEntry", "Queue": "support", "Position": "1", "Channel": TRUNK, "Wait": "9"},
        {"Event": "QueueEntry", "Queue": "support", "Channel": "gone"},
        {"Event": "Newchannel", "Channel": "PJSIP/1-1", "Uniqueid": "6.1"},
    ]

    snapshot = snapshot_from_frames(frames)

    assert [c.uniqueid for c in snapshot.channels] == ["5.1", "5.2"]
    trunk, local = snapshot.channels
    assert (trunk.duration_s, trunk.caller_name, trunk.application) == (65, "Иван", "Queue")
    assert (local.local, local.state, local.duration_s) == (True, "Ringing", None)
    assert snapshot.queue_callers == (
        QueueCaller(queue="support", uniqueid="5.1", channel=TRUNK, position=1, wait_s=9),
    )
    assert snapshot.members == {"L/1": "Оператор 101"}


# --- reconciling open calls ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "track", "reason"),
    [
        ({"status": CallStatus.ANSWERED, "answered_at": NOW}, None, EndReason.COMPLETED),
        ({"status": CallStatus.QUEUED, "queue": "support"}, None, EndReason.ABANDONED),
        (
            {"status": CallStatus.QUEUED, "queue": "support"},
            CallTrack("7.1", "7.1", Direction.INBOUND, outcome=EndReason.QUEUE_TIMEOUT),
            EndReason.QUEUE_TIMEOUT,
        ),
        ({}, None, EndReason.CALLER_HANGUP),
    ],
)
def test_given_an_open_call_without_live_channels_when_reconciled_then_it_ends_as_best_known(
    fields: dict[str, Any], track: CallTrack | None, reason: EndReason
) -> None:
    previous = TranslatorState(calls={"7.1": track}) if track is not None else None
    local_leftover = LiveChannel("7.3", "7.1", "Local/101@agents-00000001;2")

    result = reconcile(
        [_open("7.1", **fields)],
        Snapshot(channels=(local_leftover,)),
        pbx=PBX,
        now=NOW,
        previous=previous,
    )

    assert result.events == (
        CallEnded(pbx=PBX, call_key="7.1", event_id="resync:7.1:end", at=NOW, reason=reason),
    )
    assert not result.state.calls


def test_given_an_ended_call_in_the_crm_when_reconciled_then_nothing_is_said_about_it() -> None:
    ended = _open("7.1", status=CallStatus.ENDED, end_reason=EndReason.COMPLETED)

    result = reconcile([ended], Snapshot(), pbx=PBX, now=NOW)

    assert result.events == ()


def test_given_an_unknown_call_waiting_in_a_queue_when_reconciled_then_it_is_started_and_queued() -> (  # noqa: E501
    None
):
    snapshot = Snapshot(
        channels=(_trunk("8.1"),),
        queue_callers=(QueueCaller("support", "8.1", TRUNK, position=3, wait_s=12),),
    )

    first = reconcile([], snapshot, pbx=PBX, now=NOW)
    again = reconcile([], snapshot, pbx=PBX, now=NOW)

    assert first.events == again.events
    started, queued = first.events
    assert isinstance(started, CallStarted)
    assert (started.event_id, started.direction, started.at) == (
        "8.1:call_started",
        Direction.INBOUND,
        NOW - timedelta(seconds=30),
    )
    assert (started.caller_num, started.caller_name, started.callee_num) == (
        "+79161234567",
        "Иван",
        "8001",
    )
    assert isinstance(queued, CallQueued)
    assert (queued.queue, queued.position, queued.at) == ("support", 3, NOW - timedelta(seconds=12))
    track = first.state.calls["8.1"]
    assert (track.in_queue, track.queue, track.outcome) == (True, "support", EndReason.ABANDONED)


def test_given_a_local_only_linkedid_when_reconciled_then_no_call_is_started() -> None:
    snapshot = Snapshot(channels=(LiveChannel("9.1", "9.1", "Local/200@dialer-00000001;1"),))

    result = reconcile([], snapshot, pbx=PBX, now=NOW)

    assert result.events == ()
    assert not result.state.calls
    assert set(result.state.channels) == {"9.1"}


def test_given_a_call_bridged_with_an_agent_when_the_crm_missed_the_answer_then_it_is_answered() -> (  # noqa: E501
    None
):
    snapshot = Snapshot(
        channels=(
            _trunk("8.1", bridge_id="b-1"),
            LiveChannel("8.2", "8.1", "Local/101@agents-00000004;1", state="Up", bridge_id="b-1"),
            LiveChannel("8.3", "8.1", "Local/101@agents-00000004;2", state="Up"),
        ),
        members={"Local/101@agents": "Оператор 101"},
    )
    crm = _open("8.1", status=CallStatus.QUEUED, queue="support", queued_at=NOW)

    result = reconcile([crm], snapshot, pbx=PBX, now=NOW)

    assert len(result.events) == 1
    answered = result.events[0]
    assert isinstance(answered, CallAnswered)
    assert (answered.agent, answered.agent_name, answered.queue) == (
        "Local/101@agents",
        "Оператор 101",
        "support",
    )
    track = result.state.calls["8.1"]
    assert track.answered
    assert not track.in_queue
    assert track.outcome is EndReason.QUEUE_TIMEOUT
    assert result.state.channels["8.1"].bridged


def test_given_ringing_that_changed_during_the_outage_when_reconciled_then_rings_are_corrected() -> (  # noqa: E501
    None
):
    snapshot = Snapshot(
        channels=(
            _trunk("8.1"),
            LiveChannel("8.4", "8.1", "Local/103@agents-00000005;1", state="Ringing"),
        ),
        queue_callers=(QueueCaller("support", "8.1", TRUNK, position=1, wait_s=20),),
    )
    crm = _open(
        "8.1",
        status=CallStatus.QUEUED,
        queue="support",
        queued_at=NOW,
        ringing_agents=frozenset({"Local/101@agents"}),
    )

    result = reconcile([crm], snapshot, pbx=PBX, now=NOW)

    stopped, ringing = result.events
    assert isinstance(stopped, AgentStoppedRinging)
    assert (stopped.agent, stopped.reason) == ("Local/101@agents", StopRingReason.NO_ANSWER)
    assert isinstance(ringing, AgentRinging)
    assert (ringing.agent, ringing.event_id) == ("Local/103@agents", "resync:8.1:ringing:8.4")
    assert result.state.calls["8.1"].ringing == {"8.4": "Local/103@agents"}


def test_given_a_seeded_state_when_the_caller_later_hangs_up_in_queue_then_the_call_is_abandoned() -> (  # noqa: E501
    None
):
    snapshot = Snapshot(
        channels=(_trunk("8.1"),),
        queue_callers=(QueueCaller("support", "8.1", TRUNK, position=1, wait_s=5),),
    )
    crm = _open("8.1", status=CallStatus.QUEUED, queue="support", queued_at=NOW)
    seeded = reconcile([crm], snapshot, pbx=PBX, now=NOW).state
    later = [
        {"Event": "HangupRequest", "Uniqueid": "8.1", "Linkedid": "8.1", "Channel": TRUNK},
        {"Event": "QueueCallerAbandon", "Uniqueid": "8.1", "Linkedid": "8.1", "Queue": "support"},
        {"Event": "QueueCallerLeave", "Uniqueid": "8.1", "Linkedid": "8.1", "Queue": "support"},
        {"Event": "Hangup", "Uniqueid": "8.1", "Linkedid": "8.1", "Channel": TRUNK},
    ]

    state, events = translate_all(later, seeded)
    calls = fold(events, {"8.1": crm})

    assert calls["8.1"].status is CallStatus.ENDED
    assert calls["8.1"].end_reason is EndReason.ABANDONED
    assert not state.calls
    assert not state.channels


def test_given_a_previous_state_when_reconciled_then_knowledge_about_live_channels_is_kept() -> (
    None
):
    rec = recording("basic_20calls")
    # Up to the MixMonitorStart of the first queued call: its recording name was set.
    key = "1795906366.1"
    upto = next(
        i
        for i, f in enumerate(rec.frames)
        if f.get("Uniqueid") == key and f.get("Event") == "QueueCallerJoin"
    )
    previous, events = translate_all(rec.frames[:upto])
    now = float(rec.frames[upto - 1]["Timestamp"])
    snapshot = snapshot_from_frames(snapshot_frames(rec.frames[:upto], now))

    result = reconcile(fold(events).values(), snapshot, pbx=PBX, now=NOW, previous=previous)

    assert result.events == ()
    assert result.state.channels[key].recording_file.endswith(f"{key}.wav")
    assert result.state.calls[key] == previous.calls[key]


# --- outages cut into the recorded streams ------------------------------------------------

CUTS = (0.1, 0.3, 0.5, 0.7, 0.9)
WINDOWS = (10, 80, 400)
_DECISIVE = {
    "Newchannel",
    "QueueCallerJoin",
    "QueueCallerAbandon",
    "QueueCallerLeave",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "BridgeLeave",
    "HangupRequest",
    "SoftHangupRequest",
    "MixMonitorStart",
    "Hangup",
}
_LOST_BUT_RECOVERABLE = {
    "Newchannel",
    "QueueCallerJoin",
    "AgentCalled",
    "AgentRingNoAnswer",
    "DialBegin",
    "DialEnd",
    "MixMonitorStart",
}
"""Lost frames that do not decide how an unanswered call ends, or that the snapshot makes up
for (the call itself, its place in the queue)."""


def _stamp_before(frames: tuple[Frame, ...], index: int) -> float:
    for frame in reversed(frames[:index]):
        if "Timestamp" in frame:
            return float(frame["Timestamp"])
    raise AssertionError("no timestamped frame")


def _with_outage(rec: Recording, start: int, resume: int, restart: bool) -> Calls:
    """Translate the stream with frames[start:resume] lost and a resync at `resume`."""
    frames = rec.frames
    state, events = translate_all(frames[:start])
    calls = fold(events)
    now = _stamp_before(frames, resume)
    snapshot = snapshot_from_frames(snapshot_frames(frames[:resume], now, rec.agent_names))
    result = reconcile(
        calls.values(),
        snapshot,
        pbx=PBX,
        now=datetime.fromtimestamp(now, UTC),
        previous=None if restart else state,
    )
    calls = fold(result.events, calls)
    state, events = translate_all(frames[resume:], result.state)
    assert not state.calls, "every call the translator tracked has ended"
    return fold(events, calls)


def _trunk_frames(rec: Recording, key: str) -> list[tuple[int, Frame]]:
    return [(i, f) for i, f in enumerate(rec.frames) if f.get("Uniqueid") == key]


def _first(frames: list[tuple[int, Frame]], *events: str, status: str = "") -> int | None:
    for index, frame in frames:
        if frame.get("Event") in events and frame.get("DialStatus", "") == status:
            return index
    return None


def _check_call(call: dict[str, Any], calls: Calls, rec: Recording, start: int, resume: int) -> str:
    """Assert what can be known about `call` despite the outage; say how much that was."""
    key = call["linkedid"]
    own = _trunk_frames(rec, key)
    born = _first(own, "Newchannel")
    gone = _first(own, "Hangup")
    assert born is not None
    assert gone is not None
    if start <= born and gone < resume:
        assert key not in calls, "a call that lived only during the outage is not invented"
        return "unseen"
    state = calls[key]
    assert state.status is CallStatus.ENDED
    assert state.direction is Direction.INBOUND
    lost = {f["Event"] for i, f in own if start <= i < resume and f["Event"] in _DECISIVE}
    expected = OUTCOME_REASON[call["outcome"]]
    if not lost:
        assert state.caller_num == call["caller_num_raw"]
        assert state.end_reason is expected
        assert state.agent_name == (call["agent"] or "")
        assert state.queue == call["queue"]
        assert state.recording == call["recording"]
        assert (state.ended_by.value if state.ended_by else None) == call["ended_by"]
        for field, got in (("wait_s", state.wait_seconds), ("talk_s", state.talk_seconds)):
            if call[field] is None:
                assert got is None
            else:
                assert got is not None
                assert abs(got - call[field]) <= 1.0
        return "exact"
    answer = _answer(own)
    if answer is not None:
        answered_at, leg = answer
        if answered_at < start or answered_at >= resume:
            verdict = "answer kept" if answered_at < start else "answer seen"
        elif gone >= resume and _alive_at(rec, leg, resume):
            verdict = "answer recovered"  # the snapshot shows the agent's leg up
        else:
            return "closed"  # answered and finished while the link was down
        assert state.end_reason is EndReason.COMPLETED
        assert state.agent_name == call["agent"]
        return verdict
    if gone >= resume and lost <= _LOST_BUT_RECOVERABLE:
        assert state.end_reason is expected
        assert state.queue == call["queue"]
        return "outcome recovered"
    assert state.end_reason is not EndReason.COMPLETED
    return "closed"


def _answer(own: list[tuple[int, Frame]]) -> tuple[int, str] | None:
    """Where the trunk channel's call was answered (AgentConnect in a queue, else DialEnd
    ANSWER), and the answering leg's uniqueid."""
    queued = any(f.get("Event") == "QueueCallerJoin" for _, f in own)
    for index, frame in own:
        event, status = frame.get("Event"), frame.get("DialStatus")
        if event == "AgentConnect" or (not queued and event == "DialEnd" and status == "ANSWER"):
            return index, frame["DestUniqueid"]
    return None


def _alive_at(rec: Recording, uniqueid: str, index: int) -> bool:
    gone = _first(_trunk_frames(rec, uniqueid), "Hangup")
    return gone is None or gone >= index


@pytest.mark.parametrize("restart", [False, True], ids=["reconnect", "restart"])
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("name", STREAMS)
def test_given_frames_lost_while_the_link_was_down_when_resynced_then_every_call_closes_correctly(
    name: str, cut: float, window: int, restart: bool
) -> None:
    rec = recording(name)
    start = int(len(rec.frames) * cut)
    resume = min(len(rec.frames) - 1, start + window)

    calls = _with_outage(rec, start, resume, restart)

    assert set(calls) <= {c["linkedid"] for c in rec.calls}
    assert all(c.status is CallStatus.ENDED for c in calls.values())
    verdicts = [_check_call(call, calls, rec, start, resume) for call in rec.calls]
    assert verdicts.count("exact") >= len(rec.calls) // 3


@pytest.mark.parametrize("name", STREAMS)
def test_given_a_resync_with_nothing_lost_when_continued_then_the_result_is_unchanged(
    name: str,
) -> None:
    rec = recording(name)
    middle = len(rec.frames) // 2
    state, events = translate_all(rec.frames[:middle])
    calls = fold(events)
    now = _stamp_before(rec.frames, middle)
    snapshot = snapshot_from_frames(snapshot_frames(rec.frames[:middle], now, rec.agent_names))

    result = reconcile(
        calls.values(), snapshot, pbx=PBX, now=datetime.fromtimestamp(now, UTC), previous=state
    )
    _, rest = translate_all(rec.frames[middle:], result.state)

    assert result.events == ()
    assert fold(rest, calls) == fold(translate_all(rec.frames)[1])


def test_given_a_frame_of_an_unseen_call_when_translated_without_resync_then_the_call_starts() -> (
    None
):
    rec = recording("basic_20calls")
    key = "1795906366.1"
    join = next(
        f for f in rec.frames if f.get("Uniqueid") == key and f.get("Event") == "QueueCallerJoin"
    )

    _, events = translate(TranslatorState(), join, pbx=PBX, arrival=ARRIVAL)

    assert [type(e) for e in events] == [CallStarted, CallQueued]
    assert events[0].event_id == f"{key}:call_started"
