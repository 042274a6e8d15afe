"""The adapter loop: AMI frames → pure translation → batches of CallEvents → a sink.

The sink (given by the composition root) applies a batch in one transaction. Frames keep
arriving while a batch is being written; the next batch takes everything that piled up, so
a quiet PBX gets one-event batches (low latency) and a busy one gets large ones (throughput).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from callcenter.calls.state import CallState
from callcenter.events import CallEvent
from pbx_adapter.translate import TranslatorState, translate

log = logging.getLogger(__name__)

EventSink = Callable[[Sequence[CallEvent]], Awaitable[None]]
OpenCalls = Callable[[], Awaitable[list[CallState]]]


class EventPipeline:
    """Translates frames in arrival order and feeds the sink in batches, never concurrently."""

    def __init__(self, pbx: str, sink: EventSink, *, max_batch: int = 500) -> None:
        self.pbx = pbx
        self.state = TranslatorState()
        self._sink = sink
        self._max_batch = max_batch
        self._pending: list[CallEvent] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.events = 0
        self.poisoned = 0

    def feed(self, frame: Mapping[str, str], arrival: datetime | None = None) -> None:
        """Translate one frame now (pure, cheap) and queue its events for the sink."""
        self.frames += 1
        when = arrival or datetime.now(UTC)
        self.state, events = translate(self.state, frame, pbx=self.pbx, arrival=when)
        self.push(events)

    def push(self, events: Sequence[CallEvent]) -> None:
        if not events:
            return
        self._pending.extend(events)
        self.events += len(events)
        self._idle.clear()
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name=f"pbx-sink-{self.pbx}")

    async def flush(self) -> None:
        """Wait until every queued event has been applied."""
        await self._idle.wait()

    async def stop(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._apply(batch)
            self._idle.set()

    async def _apply(self, batch: list[CallEvent]) -> None:
        # The sink itself retries what the database refuses. Anything else is a bug that one
        # event triggers: apply the batch event by event so only that event is set aside.
        try:
            await self._sink(batch)
            return
        except Exception:
            if len(batch) == 1:
                self.poisoned += 1
                log.exception("call event could not be applied: %s", batch[0].model_dump_json())
                return
        for event in batch:
            await self._apply([event])


def health_snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of adapter health values."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}
