"""AMI queue-member and queue-caller frames → the QueueEvent contract; the queue snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from callcenter.events import (
    CallerLeftQueue,
    DeviceState,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
    MemberStatus,
)
from pbx_adapter.resync import queue_snapshot, snapshot_from_frames
from pbx_adapter.translate import TranslatorState, translate_queue
from tests.helpers_ami import ARRIVAL, PBX, recording

MEMBER = {
    "Privilege": "agent,all",
    "Queue": "support",
    "MemberName": "Оператор 102",
    "Interface": "Local/102@agents",
    "StateInterface": "Local/102@agents",
    "Membership": "static",
    "Penalty": "0",
    "CallsTaken": "5",
    "LastCall": "1795906453",
    "InCall": "0",
    "Status": "1",
    "Ringinuse": "0",
    "Wrapuptime": "0",
}


def _one(frame: dict[str, str]) -> object:
    (event,) = translate_queue(TranslatorState(), frame, pbx=PBX, arrival=ARRIVAL)
    return event


def test_given_a_pause_frame_then_the_member_is_paused_with_reason_since_last_pause() -> None:
    frame = {
        "Event": "QueueMemberPause",
        "Timestamp": "1795906457.954795",
        **MEMBER,
        "Paused": "1",
        "PausedReason": "Обед",
        "LastPause": "1795906457",
    }

    event = _one(frame)

    assert isinstance(event, MemberPaused)
    assert event.at == datetime.fromtimestamp(1795906457.954795, UTC)
    assert (event.member.paused, event.member.pause_reason) == (True, "Обед")
    assert event.member.paused_since == datetime.fromtimestamp(1795906457, UTC)
    assert event.member.name == "Оператор 102"
    assert event.event_id == _one(frame).event_id  # type: ignore[attr-defined]


def test_given_an_unpause_frame_then_the_member_is_not_paused_and_has_no_reason() -> None:
    frame = {
        "Event": "QueueMemberPause",
        "Timestamp": "1795906475.956420",
        **MEMBER,
        "Paused": "0",
        "PausedReason": "",
        "LastPause": "1795906457",
    }

    event = _one(frame)

    assert isinstance(event, MemberPaused)
    assert (event.member.paused, event.member.pause_reason, event.member.paused_since) == (
        False,
        "",
        None,
    )


def test_given_member_status_frames_then_device_states_are_named() -> None:
    for status, device in (
        ("1", DeviceState.NOT_IN_USE),
        ("2", DeviceState.IN_USE),
        ("5", DeviceState.UNAVAILABLE),
        ("6", DeviceState.RINGING),
        ("x", DeviceState.UNKNOWN),
    ):
        frame = {"Event": "QueueMemberStatus", "Timestamp": "1.0", **MEMBER, "Status": status}
        event = _one(frame)
        assert isinstance(event, MemberStatus)
        assert event.member.device is device


def test_given_members_added_and_removed_then_so_say_the_events() -> None:
    added = _one({"Event": "QueueMemberAdded", "Timestamp": "2.0", **MEMBER, "Queue": "sales"})
    removed = _one({"Event": "QueueMemberRemoved", "Timestamp": "3.0", **MEMBER})

    assert isinstance(added, MemberAdded)
    assert (added.queue, added.member.interface) == ("sales", "Local/102@agents")
    assert isinstance(removed, MemberRemoved)
    assert (removed.queue, removed.interface) == ("support", "Local/102@agents")


def test_given_a_frame_without_queue_or_interface_then_no_member_event() -> None:
    frame = {"Event": "QueueMemberStatus", "Timestamp": "1.0", "Queue": "support"}

    assert translate_queue(TranslatorState(), frame, pbx=PBX, arrival=ARRIVAL) == []


def test_given_the_recorded_streams_then_callers_leave_queues_once_per_leave_frame() -> None:
    rec = recording("mixed_60calls")
    state = TranslatorState()
    left = [
        e
        for f in rec.frames
        for e in translate_queue(state, f, pbx=PBX, arrival=ARRIVAL)
        if isinstance(e, CallerLeftQueue)
    ]
    leaves = [f for f in rec.frames if f.get("Event") in ("QueueCallerLeave", "QueueCallerAbandon")]

    assert len(left) == len(leaves)
    assert {e.call_key for e in left} == {c["linkedid"] for c in rec.calls if c["queue"]}
    assert len({e.event_id for e in left}) == len(left)


def test_given_a_queue_status_answer_then_the_snapshot_has_params_members_and_callers() -> None:
    now = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    frames = [
        {
            "Event": "CoreShowChannel",
            "Channel": "IAX2/127.0.0.1:4570-1",
            "Uniqueid": "10.2",
            "Linkedid": "10.1",
            "ChannelStateDesc": "Up",
        },
        {
            "Event": "QueueParams",
            "Queue": "support",
            "Strategy": "rrmemory",
            "ServiceLevel": "20",
        },
        {"Event": "QueueParams", "Queue": "sales", "Strategy": "ringall", "ServiceLevel": "0"},
        {
            "Event": "QueueMember",
            "Queue": "support",
            "Name": "Оператор 102",
            "Location": "Local/102@agents",
            "Status": "1",
            "Paused": "1",
            "PausedReason": "Обед",
            "LastPause": "1795906457",
        },
        {
            "Event": "QueueEntry",
            "Queue": "support",
            "Position": "1",
            "Channel": "IAX2/127.0.0.1:4570-1",
            "Uniqueid": "10.2",
            "Wait": "12",
        },
        {"Event": "QueueStatusComplete"},
    ]

    event = queue_snapshot(snapshot_from_frames(frames), pbx=PBX, now=now)

    assert [(q.queue, q.strategy, q.service_level_s) for q in event.queues] == [
        ("support", "rrmemory", 20),
        ("sales", "ringall", None),
    ]
    (member,) = event.members
    assert (member.interface, member.name, member.paused, member.pause_reason) == (
        "Local/102@agents",
        "Оператор 102",
        True,
        "Обед",
    )
    assert member.device is DeviceState.NOT_IN_USE
    assert [(w.queue, w.call_key, w.position) for w in event.waiting] == [("support", "10.1", 1)]
    assert event.at == now
