"""Two moments where a resync used to change what a call shows: a queue leg not yet ringing,
and a caller between abandoning the queue and hanging up."""

from __future__ import annotations

from datetime import UTC, datetime

from callcenter.calls.state import CallStatus
from callcenter.events import AgentStoppedRinging, EndReason
from pbx_adapter.frames import Frame
from pbx_adapter.resync import reconcile, snapshot_from_frames
from tests.helpers_ami import PBX, fold, recording, snapshot_frames, translate_all


def _stamp_before(frames: tuple[Frame, ...], index: int) -> float:
    return next(float(f["Timestamp"]) for f in reversed(frames[:index]) if "Timestamp" in f)


def _index(frames: tuple[Frame, ...], event: str, **fields: str) -> int:
    return next(
        i
        for i, f in enumerate(frames)
        if f.get("Event") == event and all(f.get(k) == v for k, v in fields.items())
    )


def test_given_a_queue_leg_still_down_when_resynced_then_the_agent_keeps_ringing() -> None:
    rec = recording("mixed_60calls")
    cut = _index(rec.frames, "AgentCalled") + 1
    leg = rec.frames[cut - 1]["DestChannel"]
    state, events = translate_all(rec.frames[:cut])
    calls = fold(events)
    now = _stamp_before(rec.frames, cut)
    answer = snapshot_frames(rec.frames[:cut], now, rec.agent_names)
    assert {f["ChannelStateDesc"] for f in answer if f.get("Channel") == leg} == {"Down"}

    result = reconcile(
        calls.values(),
        snapshot_from_frames(answer),
        pbx=PBX,
        now=datetime.fromtimestamp(now, UTC),
        previous=state,
    )

    assert not [e for e in result.events if isinstance(e, AgentStoppedRinging)]
    assert fold(result.events, calls) == calls


def test_given_a_caller_who_abandoned_when_resynced_before_the_hangup_then_it_stays_abandoned() -> (
    None
):
    rec = recording("basic_20calls")
    key = next(c["linkedid"] for c in rec.calls if c["outcome"] == "abandoned")
    cut = _index(rec.frames, "QueueCallerAbandon", Linkedid=key) + 1
    state, events = translate_all(rec.frames[:cut])
    calls = fold(events)
    now = _stamp_before(rec.frames, cut)
    snapshot = snapshot_from_frames(snapshot_frames(rec.frames[:cut], now, rec.agent_names))

    result = reconcile(
        calls.values(), snapshot, pbx=PBX, now=datetime.fromtimestamp(now, UTC), previous=state
    )
    _, rest = translate_all(rec.frames[cut:], result.state)
    final = fold(rest, fold(result.events, calls))

    assert final[key].status is CallStatus.ENDED
    assert final[key].end_reason is EndReason.ABANDONED
