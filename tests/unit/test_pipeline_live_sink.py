"""The adapter's pipeline hands queue events to the live sink in PBX order, after the call
sink has applied the call events of the same batch, without holding the call sink up; without
a live sink nothing changes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from callcenter.events import CallEvent, PbxEvent, is_call_event
from pbx_adapter.runner import EventPipeline, PipelineMetrics
from tests.helpers_ami import PBX, recording


class Recorder:
    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name
        self.seen: list[PbxEvent] = []
        self.batches: list[tuple[int, int]] = []
        """Per batch: call events the other sink had applied by then, call events in it."""
        self.other: Recorder | None = None

    async def __call__(self, events: Sequence[PbxEvent]) -> None:
        self.log.append(self.name)
        applied = len(self.other.seen) if self.other else 0
        self.batches.append((applied, sum(1 for e in events if is_call_event(e))))
        self.seen.extend(events)


async def test_given_a_live_sink_then_it_sees_every_event_in_order_after_the_call_sink() -> None:
    log: list[str] = []
    calls, board = Recorder(log, "calls"), Recorder(log, "board")
    board.other = calls

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
    # every batch reaches the board after the call sink applied its call events
    shown = 0
    for applied, call_events in board.batches:
        shown += call_events
        assert applied >= shown
    assert log[-1] == "board"


async def test_given_a_slow_live_sink_then_the_call_sink_does_not_wait_for_it() -> None:
    calls: list[CallEvent] = []
    board: list[PbxEvent] = []
    board_open = asyncio.Event()
    caught_up = asyncio.Event()
    call_batches = 0

    async def call_sink(events: Sequence[CallEvent]) -> None:
        nonlocal call_batches
        call_batches += 1
        calls.extend(events)
        if len(calls) == pipeline.events:
            caught_up.set()

    async def slow_board(events: Sequence[PbxEvent]) -> None:
        await board_open.wait()
        board.extend(events)

    pipeline = EventPipeline(PBX, call_sink, live_sink=slow_board, linger_s=0)
    pipeline.start()
    frames = recording("basic_20calls").frames
    half = len(frames) // 2
    for frame in frames[:half]:
        pipeline.feed(frame)
    await asyncio.wait_for(caught_up.wait(), 5)
    caught_up.clear()
    for frame in frames[half:]:
        pipeline.feed(frame)
    await asyncio.wait_for(caught_up.wait(), 5)

    assert call_batches >= 2, "the call sink went on while the board was stuck on a batch"
    assert board == []
    stopping = asyncio.create_task(pipeline.stop())
    await asyncio.sleep(0)
    assert not stopping.done(), "stop waits for the board"
    board_open.set()
    await stopping
    assert [e for e in board if is_call_event(e)] == calls
    assert len(board) == pipeline.events + pipeline.queue_events


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


async def test_given_metrics_then_each_batch_reports_its_lag_and_nothing_is_left_pending() -> None:
    registry = CollectorRegistry()
    batches = 0

    async def call_sink(events: Sequence[CallEvent]) -> None:
        nonlocal batches
        batches += 1

    async def board(events: Sequence[PbxEvent]) -> None:
        pass

    pipeline = EventPipeline(
        PBX, call_sink, live_sink=board, linger_s=0, metrics=PipelineMetrics.of(registry)
    )
    pipeline.start()
    for frame in recording("basic_20calls").frames:
        pipeline.feed(frame)
    pending = registry.get_sample_value(
        "callcenter_pbx_pending_events", {"pbx": PBX, "stage": "calls"}
    )
    await pipeline.stop()

    assert pending == pipeline.events + pipeline.queue_events  # nothing applied before a yield
    lag = {"pbx": PBX}
    observed = registry.get_sample_value("callcenter_pbx_apply_lag_seconds_count", lag)
    assert observed is not None
    assert observed >= batches >= 1  # one per batch taken (a batch may hold no call event)
    assert registry.get_sample_value("callcenter_pbx_apply_lag_seconds_sum", lag) >= 0
    for stage in ("calls", "board"):
        labels = {"pbx": PBX, "stage": stage}
        assert registry.get_sample_value("callcenter_pbx_pending_events", labels) == 0
