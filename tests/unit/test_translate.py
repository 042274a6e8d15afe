"""AMI frames → CallEvents → call states, checked against what really happened per call."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.calls.state import CallState, CallStatus
from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
    Direction,
    EndReason,
    Party,
    RecordingStarted,
    StopRingReason,
)
from pbx_adapter.frames import Frame
from pbx_adapter.translate import (
    TranslatorConfig,
    TranslatorState,
    frame_time,
    interface_of,
    translate,
)
from tests.helpers_ami import (
    ARRIVAL,
    OUTCOME_REASON,
    PBX,
    STREAMS,
    Calls,
    fold,
    recording,
    shuffle_across_channels,
    translate_all,
)

FIELDS = (
    "caller",
    "status",
    "end_reason",
    "agent_name",
    "queue",
    "recording",
    "ended_by",
    "wait_s",
    "talk_s",
)


def _within_a_second(expected: float | None, got: float | None) -> bool:
    if expected is None or got is None:
        return expected is got
    return abs(expected - got) <= 1.0


def _field_matches(field: str, call: dict[str, Any], state: CallState) -> bool:
    """Does `state` agree with the record `call` (queue_log and CDR) on `field`?"""
    ended_by = state.ended_by.value if state.ended_by is not None else None
    match field:
        case "caller":
            return bool(state.caller_num == call["caller_num_raw"])
        case "status":
            return state.status is CallStatus.ENDED
        case "end_reason":
            return state.end_reason is OUTCOME_REASON[call["outcome"]]
        case "agent_name":
            return bool(state.agent_name == (call["agent"] or ""))
        case "queue":
            return bool(state.queue == call["queue"])
        case "recording":
            return bool(state.recording == call["recording"])
        case "ended_by":
            return bool(ended_by == call["ended_by"])
        case "wait_s":
            return _within_a_second(call["wait_s"], state.wait_seconds)
        case "talk_s":
            return _within_a_second(call["talk_s"], state.talk_seconds)
    raise AssertionError(field)


def _mismatches(
    calls: Calls, record: list[dict[str, Any]], fields: tuple[str, ...] = FIELDS
) -> dict[str, list[str]]:
    wrong: dict[str, list[str]] = {}
    for call in record:
        state = calls[call["linkedid"]]
        for field in fields:
            if not _field_matches(field, call, state):
                wrong.setdefault(field, []).append(call["linkedid"])
    return wrong


@pytest.mark.parametrize("name", STREAMS)
def test_given_recorded_stream_when_translated_and_folded_then_every_call_matches_the_record(
    name: str,
) -> None:
    rec = recording(name)

    state, events = translate_all(rec.frames)
    calls = fold(events)

    assert sorted(calls) == sorted(call["linkedid"] for call in rec.calls)
    assert _mismatches(calls, rec.calls) == {}
    assert all(c.direction is Direction.INBOUND for c in calls.values())
    # Every answering agent rang first, and nobody is left ringing.
    assert all(not c.ringing_agents for c in calls.values())
    # Nothing is left behind in the translator once every channel hung up.
    assert not state.calls
    assert not state.channels


@pytest.mark.parametrize("name", STREAMS)
def test_given_recorded_stream_when_translated_then_each_call_starts_and_ends_once(
    name: str,
) -> None:
    rec = recording(name)

    _, events = translate_all(rec.frames)

    kinds = Counter((e.call_key, e.kind) for e in events)
    for call in rec.calls:
        assert kinds[(call["linkedid"], "call_started")] == 1
        assert kinds[(call["linkedid"], "call_ended")] == 1
        assert kinds[(call["linkedid"], "call_answered")] == (call["outcome"] == "answered")


@pytest.mark.parametrize("name", STREAMS)
def test_given_recorded_stream_when_translated_then_event_ids_are_unique(name: str) -> None:
    _, events = translate_all(recording(name).frames)

    ids = [e.event_id for e in events]

    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", STREAMS)
def test_given_recorded_stream_when_replayed_then_events_and_ids_are_identical(
    name: str,
) -> None:
    frames = recording(name).frames

    _, first = translate_all(frames)
    _, second = translate_all(frames)

    assert first == second


@pytest.mark.parametrize("name", STREAMS)
def test_given_all_events_when_applied_twice_then_states_are_identical(name: str) -> None:
    _, events = translate_all(recording(name).frames)

    once = fold(events)
    twice = fold(events, once)

    assert twice == once


@pytest.mark.parametrize("name", STREAMS)
def test_given_every_frame_delivered_twice_when_translated_then_calls_are_the_same(
    name: str,
) -> None:
    frames = recording(name).frames
    doubled = [frame for frame in frames for _ in range(2)]

    _, single_events = translate_all(frames)
    _, double_events = translate_all(doubled)

    assert {e.event_id for e in double_events} == {e.event_id for e in single_events}
    assert fold(double_events) == fold(single_events)


@pytest.mark.parametrize("name", STREAMS)
def test_given_the_same_frame_twice_when_translated_from_the_same_state_then_ids_are_equal(
    name: str,
) -> None:
    state = TranslatorState()
    applied: set[str] = set()
    for frame in recording(name).frames:
        state_a, first = translate(state, frame, pbx=PBX, arrival=ARRIVAL)
        state_b, second = translate(state, frame, pbx=PBX, arrival=ARRIVAL)
        assert [e.event_id for e in first] == [e.event_id for e in second]
        assert state_a == state_b
        applied |= {e.event_id for e in first}
        # A re-delivered frame means nothing new: at most ids already applied (a repeated
        # Hangup of a forgotten channel re-sights it under the call's own start/end ids).
        _, again = translate(state_a, frame, pbx=PBX, arrival=ARRIVAL)
        assert {e.event_id for e in again} <= applied
        state = state_a


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", STREAMS)
def test_given_frames_shuffled_across_channels_when_translated_then_calls_still_match(
    name: str, seed: int
) -> None:
    rec = recording(name)
    shuffled = shuffle_across_channels(rec.frames, seed)
    assert shuffled != list(rec.frames)
    # Member names come from queue events, which have no channel; a deployment that wants
    # them before the first queue event names its agents up front.
    start = TranslatorState(agent_names=rec.agent_names)

    state, events = translate_all(shuffled, start)
    calls = fold(events)

    assert sorted(calls) == sorted(call["linkedid"] for call in rec.calls)
    assert _mismatches(calls, rec.calls) == {}
    assert not state.calls


def test_given_a_direct_dial_when_the_member_names_are_not_known_then_the_interface_is_kept() -> (
    None
):
    rec = recording("basic_20calls")
    direct = [c for c in rec.calls if c["did"] == "8002"]
    shuffled = shuffle_across_channels(rec.frames, 3)

    _, events = translate_all(shuffled)
    calls = fold(events)

    for call in direct:
        assert calls[call["linkedid"]].agent == "Local/101@agents"
        assert calls[call["linkedid"]].end_reason is EndReason.COMPLETED


# --- small synthetic streams --------------------------------------------------------------


def _frame(event: str, uid: str, ts: float, **headers: str) -> Frame:
    frame = {"Event": event, "Timestamp": f"{ts:.6f}", "Uniqueid": uid}
    frame.setdefault("Linkedid", headers.pop("Linkedid", uid))
    frame.update(headers)
    return frame


def _newchannel(uid: str, channel: str, ts: float, **headers: str) -> Frame:
    return _frame("Newchannel", uid, ts, Channel=channel, **headers)


def _run(frames: list[Frame], state: TranslatorState | None = None) -> Calls:
    return fold(translate_all(frames, state)[1])


def test_given_a_local_only_linkedid_when_translated_then_no_call_is_created() -> None:
    frames = [
        _newchannel("9.1", "Local/200@dialer-00000001;1", 1.0),
        _newchannel("9.2", "Local/200@dialer-00000001;2", 1.0, Linkedid="9.1"),
        _frame("MixMonitorStart", "9.2", 2.0, Linkedid="9.1", Channel="x"),
        _frame("Hangup", "9.2", 3.0, Linkedid="9.1", Cause="16"),
        _frame("Hangup", "9.1", 3.0, Cause="16"),
    ]

    state, events = translate_all(frames)

    assert events == []
    assert state == TranslatorState()


@pytest.mark.parametrize(
    ("channel", "context", "config", "direction"),
    [
        ("IAX2/127.0.0.1:4570-1", "trunk-in", TranslatorConfig(), Direction.INBOUND),
        ("PJSIP/prov-00000001", "from-trunk", TranslatorConfig(), Direction.INBOUND),
        ("PJSIP/101-00000001", "internal", TranslatorConfig(), Direction.INTERNAL),
        (
            "PJSIP/prov-00000001",
            "default",
            TranslatorConfig(trunk_prefixes=("PJSIP/prov-",)),
            Direction.INBOUND,
        ),
    ],
)
def test_given_a_first_channel_when_started_then_direction_follows_the_trunk_rule(
    channel: str, context: str, config: TranslatorConfig, direction: Direction
) -> None:
    frames = [_newchannel("1.1", channel, 1.0, Context=context, Exten="8001")]

    _, events = translate_all(frames, TranslatorState(config=config))

    assert len(events) == 1
    assert isinstance(events[0], CallStarted)
    assert events[0].direction is direction
    assert events[0].callee_num == "8001"


def test_given_an_internal_call_when_a_trunk_channel_joins_then_it_becomes_outbound() -> None:
    frames = [
        _newchannel("1.1", "PJSIP/101-00000001", 1.0, Context="internal", Exten="89161234567"),
        _newchannel("1.2", "IAX2/127.0.0.1:4570-7", 1.1, Linkedid="1.1", Context="internal"),
        _frame("Hangup", "1.2", 5.0, Linkedid="1.1", Cause="16"),
        _frame("Hangup", "1.1", 5.1, Cause="16"),
    ]

    calls = _run(frames)

    assert calls["1.1"].direction is Direction.OUTBOUND
    assert calls["1.1"].callee_num == "89161234567"
    assert calls["1.1"].ended_at == frame_time(frames[3], ARRIVAL)


def test_given_a_non_inbound_call_when_its_first_channel_hangs_up_then_it_goes_on() -> None:
    frames = [
        _newchannel("1.1", "PJSIP/101-00000001", 1.0, Context="internal"),
        _newchannel("1.2", "PJSIP/102-00000002", 1.1, Linkedid="1.1", Context="internal"),
        _frame("Hangup", "1.1", 5.0, Cause="16"),
    ]

    state, events = translate_all(frames)

    assert not any(isinstance(e, CallEnded) for e in events)
    ended = translate(state, _frame("Hangup", "1.2", 6.0, Linkedid="1.1"), pbx=PBX, arrival=ARRIVAL)
    assert [type(e) for e in ended[1]] == [CallEnded]


@pytest.mark.parametrize(
    ("status", "reason", "stop"),
    [
        ("NOANSWER", EndReason.NO_ANSWER, StopRingReason.NO_ANSWER),
        ("BUSY", EndReason.BUSY, StopRingReason.BUSY),
        ("CANCEL", EndReason.CALLER_HANGUP, StopRingReason.CALLER_LEFT),
        ("CHANUNAVAIL", EndReason.FAILED, StopRingReason.FAILED),
        ("CONGESTION", EndReason.FAILED, StopRingReason.FAILED),
    ],
)
def test_given_a_direct_dial_when_it_is_not_answered_then_the_dial_status_ends_the_call(
    status: str, reason: EndReason, stop: StopRingReason
) -> None:
    trunk = "IAX2/127.0.0.1:4570-1"
    leg = {"DestChannel": "PJSIP/101-0000000a", "DestUniqueid": "1.2", "Channel": trunk}
    frames = [
        _newchannel("1.1", trunk, 1.0, Context="trunk-in", Exten="8002", CallerIDNum="+7916"),
        _frame("DialBegin", "1.1", 1.1, **leg, DialString="PJSIP/101"),
        _frame("DialEnd", "1.1", 9.0, **leg, DialStatus=status),
        _frame("Hangup", "1.1", 9.5, Channel=trunk, Cause="16"),
    ]

    _, events = translate_all(frames)
    calls = fold(events)

    ringing = [e for e in events if isinstance(e, AgentRinging)]
    stopped = [e for e in events if isinstance(e, AgentStoppedRinging)]
    assert [e.agent for e in ringing] == ["PJSIP/101"]
    assert [(e.agent, e.reason) for e in stopped] == [("PJSIP/101", stop)]
    assert calls["1.1"].end_reason is reason
    assert calls["1.1"].ended_by is None


@pytest.mark.parametrize(
    ("cause", "reason"),
    [("16", EndReason.CALLER_HANGUP), ("17", EndReason.BUSY), ("34", EndReason.FAILED)],
)
def test_given_a_call_that_went_nowhere_when_it_hangs_up_then_the_cause_gives_the_reason(
    cause: str, reason: EndReason
) -> None:
    frames = [
        _newchannel("1.1", "IAX2/x-1", 1.0, Context="trunk-in"),
        _frame("Hangup", "1.1", 2.0, Cause=cause),
    ]

    assert _run(frames)["1.1"].end_reason is reason


def test_given_a_ringall_queue_when_one_member_answers_then_the_others_stop_as_elsewhere() -> None:
    rec = recording("basic_20calls")
    key = next(c["linkedid"] for c in rec.calls if c["queue"] == "sales")
    frames = [f for f in rec.frames if f.get("Linkedid") == key]

    _, events = translate_all(frames)

    rang = {e.agent for e in events if isinstance(e, AgentRinging)}
    answered = [e for e in events if isinstance(e, CallAnswered)]
    stopped = {e.agent: e.reason for e in events if isinstance(e, AgentStoppedRinging)}
    assert rang == {"Local/104@agents", "Local/105@agents", "Local/106@agents"}
    assert [(e.agent, e.agent_name, e.queue) for e in answered] == [
        ("Local/105@agents", "Оператор 105", "sales")
    ]
    assert stopped == {
        "Local/104@agents": StopRingReason.ANSWERED_ELSEWHERE,
        "Local/106@agents": StopRingReason.ANSWERED_ELSEWHERE,
    }


def test_given_a_recorded_call_when_recording_starts_then_the_file_name_comes_from_mixmonitor() -> (
    None
):
    rec = recording("basic_20calls")
    key = "1795906366.1"
    frames = [f for f in rec.frames if f.get("Linkedid") == key]
    without_name = [f for f in frames if f.get("Variable") != "MIXMONITOR_FILENAME"]

    _, events = translate_all(frames)
    _, fallback = translate_all(without_name)

    assert [e.file for e in events if isinstance(e, RecordingStarted)] == [f"{key}.wav"]
    assert [e.file for e in fallback if isinstance(e, RecordingStarted)] == [f"{key}.wav"]


def test_given_a_blind_transfer_when_translated_then_the_call_is_transferred() -> None:
    trunk = "IAX2/x-1"
    frames = [
        _newchannel("1.1", trunk, 1.0, Context="trunk-in"),
        {
            "Event": "BlindTransfer",
            "Timestamp": "5.0",
            "Result": "Success",
            "TransfererChannel": "PJSIP/101-00000002",
            "TransfererUniqueid": "1.2",
            "TransfererLinkedid": "1.1",
            "TransfereeChannel": trunk,
            "TransfereeUniqueid": "1.1",
            "TransfereeLinkedid": "1.1",
            "Extension": "8004",
            "Context": "transfers",
        },
        {
            "Event": "AttendedTransfer",
            "Timestamp": "9.0",
            "Result": "Success",
            "OrigTransfererChannel": "PJSIP/102-00000003",
            "OrigTransfererUniqueid": "1.3",
            "OrigTransfererLinkedid": "1.1",
            "TransferTargetChannel": "PJSIP/103-00000005",
            "TransfereeLinkedid": "1.1",
        },
    ]

    _, events = translate_all(frames, TranslatorState(agent_names={"PJSIP/103": "Оператор 3"}))

    transfers = [e for e in events if isinstance(e, CallTransferred)]
    assert [(e.from_agent, e.to_agent, e.to_agent_name, e.to_number) for e in transfers] == [
        ("PJSIP/101", None, "", "8004"),
        ("PJSIP/102", "PJSIP/103", "Оператор 3", ""),
    ]


def test_given_an_answered_call_when_agent_complete_is_missing_then_the_bridge_order_says_who_hung_up() -> (  # noqa: E501
    None
):
    trunk = "IAX2/x-1"
    leg = {"DestChannel": "PJSIP/101-0000000a", "DestUniqueid": "1.2", "Channel": trunk}
    common = [
        _newchannel("1.1", trunk, 1.0, Context="trunk-in"),
        _frame("DialBegin", "1.1", 1.1, **leg),
        _frame("DialEnd", "1.1", 3.0, **leg, DialStatus="ANSWER"),
        _frame("BridgeEnter", "1.1", 3.1, Channel=trunk),
    ]
    caller_first = [
        _frame("HangupRequest", "1.1", 8.0, Channel=trunk),
        _frame("BridgeLeave", "1.1", 8.1, Channel=trunk),
        _frame("Hangup", "1.1", 8.2, Channel=trunk),
    ]
    agent_first = [
        _frame("BridgeLeave", "1.1", 8.1, Channel=trunk),
        _frame("SoftHangupRequest", "1.1", 8.15, Channel=trunk),
        _frame("Hangup", "1.1", 8.2, Channel=trunk),
    ]

    assert _run(common + caller_first)["1.1"].ended_by is Party.CALLER
    assert _run(common + agent_first)["1.1"].ended_by is Party.AGENT
    assert _run(common + agent_first)["1.1"].talk_seconds == pytest.approx(5.2)


def test_given_a_frame_without_timestamp_when_translated_then_arrival_is_used_and_ids_are_stable() -> (  # noqa: E501
    None
):
    frame = {"Event": "Newchannel", "Channel": "IAX2/x-1", "Uniqueid": "7.1", "Linkedid": "7.1"}
    arrival = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)

    _, first = translate(TranslatorState(), frame, pbx=PBX, arrival=arrival)
    _, second = translate(TranslatorState(), dict(frame), pbx=PBX, arrival=ARRIVAL)

    assert first[0].at == arrival
    assert first[0].event_id == second[0].event_id


def test_given_channel_names_when_reduced_then_the_device_interface_remains() -> None:
    assert interface_of("Local/101@agents-0000001a;1") == "Local/101@agents"
    assert interface_of("PJSIP/agent-101-0000001a") == "PJSIP/agent-101"
    assert interface_of("PJSIP/101") == "PJSIP/101"


# --- robustness ---------------------------------------------------------------------------

_EVENTS = (
    "Newchannel",
    "Hangup",
    "HangupRequest",
    "SoftHangupRequest",
    "BridgeEnter",
    "BridgeLeave",
    "QueueCallerJoin",
    "QueueCallerAbandon",
    "QueueCallerLeave",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "QueueMemberStatus",
    "QueueMember",
    "DialBegin",
    "DialEnd",
    "VarSet",
    "MixMonitorStart",
    "BlindTransfer",
    "AttendedTransfer",
)
_HEADERS = (
    "Timestamp",
    "Channel",
    "Uniqueid",
    "Linkedid",
    "Context",
    "Exten",
    "CallerIDNum",
    "CallerIDName",
    "Queue",
    "Position",
    "Interface",
    "MemberName",
    "DestChannel",
    "DestUniqueid",
    "DialStatus",
    "Reason",
    "Cause",
    "Variable",
    "Value",
    "Result",
    "TransfereeLinkedid",
    "TransfererLinkedid",
    "TransfererChannel",
    "TransferTargetChannel",
    "OrigTransfererLinkedid",
    "Extension",
)
_small_ids = st.sampled_from(["1.1", "1.2", "1.3", "", "x" * 200])
_values = st.one_of(
    _small_ids,
    st.sampled_from(
        ["Local/101@agents-00000001;1", "IAX2/t-1", "TIMEOUT", "ANSWER", "CANCEL", "Success"]
    ),
    st.sampled_from(["nan", "inf", "-1e300", "1e300", "9" * 5000, "1795906366.5", "agent"]),
    st.text(max_size=300),
)
_frames = st.builds(
    lambda event, known, extra: {**extra, **known, "Event": event},
    st.one_of(st.sampled_from(_EVENTS), st.text(max_size=20)),
    st.dictionaries(st.sampled_from(_HEADERS), _values, max_size=12),
    st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4),
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(_frames, max_size=30))
def test_given_arbitrary_frames_when_translated_then_nothing_raises(frames: list[Frame]) -> None:
    state, events = translate_all(frames)

    calls = fold(events)

    assert isinstance(state, TranslatorState)
    assert all(len(e.event_id) <= 255 for e in events)
    assert all(c.call_key for c in calls.values())
