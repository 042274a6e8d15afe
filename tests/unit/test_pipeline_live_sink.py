"""The adapter's pipeline hands queue events to the live sink in PBX order, after the call
sink has applied the call events of the same batch; without a live sink nothing changes."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from callcenter.events import CallEvent, PbxEvent, is_call_event
from pbx_adapter.runner import EventPipeline
from tests.helpers_ami import PBX, recording


class Recorder:
    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name
        self.seen: list[PbxEvent] = []

    async def __call__(self, events: Sequence[PbxEvent]) -> None:
        self.log.append(self.name)
        self.seen.extend(events)


async def test_given_a_live_sink_then_it_sees_every_event_in_order_after_the_call_sink() -> None:
    log: list[str] = []
    calls, board = Recorder(log, "calls"), Recorder(log, "board")

    async def call_sink(events: Sequence[CallEvent]) -> None:
        await calls(events)

    pipeline = EventPipeline(PBX, call_sink, live_sink=board, linger_s=0)
    pipeline.start()
    for frame in recording("basic_20calls").frames:
        pipeline.feed(frame)
    await pipeline.stop()

    kinds = {e.kind for e in board.seen}
    assert {"member_paused", "member_status", "caller_left_queue", "call_ended"} <= kinds
    assert [e for e in board.seen if is_call_event(e)] == calls.seen
    assert pipeline.events == len(calls.seen)
    assert pipeline.queue_events == len(board.seen) - len(calls.seen)
    # each batch: its call events to the call sink, then the whole batch to the live sink
    assert all(after == "board" for before, after in pairwise(log) if before == "calls")
    assert log[-1] == "board"


async def test_given_no_live_sink_then_only_call_events_are_queued() -> None:
    calls: list[PbxEvent] = []

    async def call_sink(events: Sequence[CallEvent]) -> None:
        calls.extend(events)

    pipeline = EventPipeline(PBX, call_sink, linger_s=0)
    pipeline.start()
    for frame in recording("basic_20calls").frames:
        pipeline.feed(frame)
    await pipeline.stop()

    assert calls
    assert all(is_call_event(e) for e in calls)
    assert pipeline.queue_events == 0
