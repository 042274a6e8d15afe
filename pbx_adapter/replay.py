"""Feed a recorded AMI stream through translation into a sink (debugging, back-filling)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pbx_adapter.frames import Frame, FrameParser
from pbx_adapter.runner import EventPipeline, EventSink


@dataclass(frozen=True, slots=True)
class ReplayStats:
    frames: int
    events: int
    rejected: int


def frames_of(data: bytes) -> tuple[list[Frame], int]:
    """The frames of a recorded stream and how many malformed ones were set aside."""
    parser = FrameParser()
    frames = parser.feed(data)
    return frames, len(parser.rejected)


async def replay_frames(
    frames: Iterable[Frame], sink: EventSink, *, pbx: str, max_batch: int = 500
) -> ReplayStats:
    """Translate every frame in order and apply the events in batches; waits until applied."""
    pipeline = EventPipeline(pbx, sink, max_batch=max_batch)
    pipeline.start()
    arrival = datetime.now(UTC)
    for frame in frames:
        pipeline.feed(frame, arrival)
    await pipeline.stop()
    return ReplayStats(frames=pipeline.frames, events=pipeline.events, rejected=0)


async def replay_bytes(data: bytes, sink: EventSink, *, pbx: str) -> ReplayStats:
    frames, rejected = frames_of(data)
    stats = await replay_frames(frames, sink, pbx=pbx)
    return ReplayStats(frames=stats.frames, events=stats.events, rejected=rejected)
