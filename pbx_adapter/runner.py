"""The adapter loop: AMI frames → pure translation → batches of CallEvents → a sink.

The sink (given by the composition root) applies a batch in one transaction. An optional
live sink then sees the whole batch in PBX order, call events and queue events (members,
callers leaving queues, the queue snapshot after a (re)connect) alike: the live queue board.
Frames keep arriving while a batch is being written; the next batch takes everything that
piled up, so a quiet PBX gets one-event batches (low latency) and a busy one gets large
ones (throughput).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram

from callcenter.calls.state import CallState
from callcenter.events import CallEvent, PbxEvent, is_call_event
from callcenter.metric_sets import PerRegistry
from pbx_adapter.ami import AmiClient
from pbx_adapter.frames import Frame
from pbx_adapter.lease import LeaseGrant, Leaseholder, LeaseLost, PbxLease
from pbx_adapter.resync import queue_snapshot, reconcile, snapshot_from_frames
from pbx_adapter.translate import (
    EVENTS_READ,
    TranslatorState,
    frame_time,
    translate,
    translate_queue,
)

log = logging.getLogger(__name__)

EventSink = Callable[[Sequence[CallEvent]], Awaitable[None]]
LiveSink = Callable[[Sequence[PbxEvent]], Awaitable[None]]
"""Given every event of a batch, in order, once the call events of it have been applied."""
OpenCalls = Callable[[], Awaitable[list[CallState]]]


class CallObserver(Protocol):
    """Sees each live call event as it is translated, before the sink gets its batch
    (`callcenter.calls.early_pops`)."""

    def observe(self, events: Sequence[CallEvent]) -> None: ...

    def reset(self) -> None:
        """Forget what was seen: the events that follow are not all live (a resync), or
        the queued ones were dropped."""


class PipelineMetrics(PerRegistry):
    """How far behind the PBX the call records are, per PBX (one set per registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.apply_lag = Histogram(
            "callcenter_pbx_apply_lag_seconds",
            "From an AMI event's arrival to its batch committed (the oldest event of each"
            " batch): what a screen pop waits in the adapter.",
            ["pbx"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.pending = Gauge(
            "callcenter_pbx_pending_events",
            "Events translated and waiting for the call records or the live queue board.",
            ["pbx", "stage"],
            registry=registry,
        )


class EventPipeline:
    """Translates frames in arrival order and feeds the sinks in batches, in two ordered
    stages: the call sink (records, pops) and, behind it, the live sink (the queue board).
    Each stage applies one batch at a time; the call sink does not wait for the board, so
    a pop's latency is the call records' alone."""

    def __init__(
        self,
        pbx: str,
        sink: EventSink,
        *,
        live_sink: LiveSink | None = None,
        max_batch: int = 500,
        linger_s: float = 0.002,
        metrics: PipelineMetrics | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.pbx = pbx
        self.observer = observer
        self._lag = metrics.apply_lag.labels(pbx) if metrics is not None else None
        if metrics is not None:
            metrics.pending.labels(pbx, "calls").set_function(lambda: len(self._pending))
            metrics.pending.labels(pbx, "board").set_function(lambda: len(self._live_pending))
        self._queued_at: float | None = None
        """When the oldest event still queued for the call sink arrived (monotonic)."""
        self._linger_s = linger_s
        self.state = TranslatorState()
        self._sink = sink
        self._live_sink = live_sink
        self._max_batch = max_batch
        self._pending: list[PbxEvent] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._live_pending: list[PbxEvent] = []
        """Events whose calls were applied, waiting for the live sink."""
        self._live_wakeup = asyncio.Event()
        self._live_idle = asyncio.Event()
        self._live_idle.set()
        self._live_task: asyncio.Task[None] | None = None
        self.lease_lost = asyncio.Event()
        """Set when the sink refused a batch because this process no longer holds the PBX."""
        self.frames = 0
        self.events = 0
        """Call events queued so far."""
        self.queue_events = 0
        self.poisoned = 0

    def feed(self, frame: Mapping[str, str], arrival: datetime | None = None) -> None:
        """Translate one frame now (pure, cheap) and queue its events for the sink."""
        self.frames += 1
        when = arrival or datetime.now(UTC)
        before = self.state
        self.state, events = translate(before, frame, pbx=self.pbx, arrival=when)
        if self.observer is not None and events:
            self.observer.observe([e for e in events if is_call_event(e)])
        self.push(events)
        if self._live_sink is not None:
            self.push(translate_queue(before, frame, pbx=self.pbx, arrival=when))

    def push(self, events: Sequence[PbxEvent]) -> None:
        """Queue events for the sinks (queue events only when there is a live sink)."""
        wanted = events if self._live_sink is not None else [e for e in events if is_call_event(e)]
        if not wanted:
            return
        calls = sum(1 for e in wanted if is_call_event(e))
        if not self._pending:
            self._queued_at = time.monotonic()
        self._pending.extend(wanted)
        self.events += calls
        self.queue_events += len(wanted) - calls
        self._idle.clear()
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name=f"pbx-sink-{self.pbx}")
        if self._live_sink is not None and self._live_task is None:
            self._live_task = asyncio.create_task(self._drain_live(), name=f"pbx-live-{self.pbx}")

    async def flush(self) -> None:
        """Wait until every queued event has been applied by both stages."""
        while not (self._idle.is_set() and self._live_idle.is_set()):
            await self._idle.wait()
            await self._live_idle.wait()

    async def stop(self) -> None:
        await self.flush()
        await self._cancel()

    async def abandon(self) -> None:
        """Stop now and drop what is queued, unapplied: the next holder's resync covers it."""
        await self._cancel()
        # After the wait: the link may have pushed more meanwhile.
        self._pending.clear()
        self._live_pending.clear()
        for wakeup in (self._wakeup, self._live_wakeup):
            wakeup.clear()
        self._idle.set()
        self._live_idle.set()
        self.state = TranslatorState()
        if self.observer is not None:
            self.observer.reset()

    async def _cancel(self) -> None:
        for task in (self._task, self._live_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._live_task = None

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            if self._linger_s:
                # A PBX sends a call's events in bursts (a ring is several frames on several
                # channels): waiting a moment puts a burst in one transaction.
                await asyncio.sleep(self._linger_s)
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                queued_at = self._queued_at
                if not self._pending:
                    self._queued_at = None  # the next push stamps the next oldest event
                applied = await self._apply_calls(batch)
                if self._lag is not None and queued_at is not None:
                    self._lag.observe(time.monotonic() - queued_at)
                if applied and self._live_sink is not None:
                    self._live_pending.extend(batch)
                    self._live_idle.clear()
                    self._live_wakeup.set()
            self._idle.set()

    async def _apply_calls(self, batch: list[PbxEvent]) -> bool:
        """Apply the batch's call events; False when this process lost the PBX (nothing
        more is applied then)."""
        # The sink itself retries what the database refuses. Anything else is a bug that one
        # event triggers: apply the batch event by event so only that event is set aside.
        calls = [e for e in batch if is_call_event(e)]
        try:
            if calls:
                await self._sink(calls)
            return True
        except LeaseLost as exc:
            log.warning("%s; dropping %d queued events", exc, len(self._pending) + len(batch))
            self._pending.clear()
            self._live_pending.clear()
            self.lease_lost.set()
            return False
        except Exception:
            if len(calls) == 1:
                self.poisoned += 1
                log.exception("PBX event could not be applied: %s", calls[0].model_dump_json())
                return True
        for event in calls:
            if not await self._apply_calls([event]):
                return False
        return True

    async def _drain_live(self) -> None:
        while True:
            await self._live_wakeup.wait()
            self._live_wakeup.clear()
            while self._live_pending:
                # Everything applied meanwhile, in one go: a board behind catches up.
                batch = self._live_pending[: self._max_batch]
                del self._live_pending[: self._max_batch]
                await self._apply_live(batch)
            self._live_idle.set()

    async def _apply_live(self, batch: list[PbxEvent]) -> None:
        assert self._live_sink is not None
        try:
            await self._live_sink(batch)
            return
        except Exception:
            if len(batch) == 1:
                self.poisoned += 1
                log.exception("PBX event not shown live: %s", batch[0].model_dump_json())
                return
        for event in batch:
            await self._apply_live([event])


def health_snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of adapter health values."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}


class PbxClock:
    """The PBX's own time: the last event Timestamp seen, moved on by wall time since."""

    def __init__(self) -> None:
        self._pbx_time: datetime | None = None
        self._seen_at = 0.0

    def observe(self, frame: Mapping[str, str], arrival: datetime) -> None:
        self._pbx_time = frame_time(frame, arrival)
        self._seen_at = time.monotonic()

    def now(self) -> datetime:
        if self._pbx_time is None:
            return datetime.now(UTC)
        return self._pbx_time + timedelta(seconds=time.monotonic() - self._seen_at)


class AmiAdapter:
    """One Asterisk: the AMI link, translation, and reconciliation after every (re)connect.

    With a `lease` (several adapter processes for one PBX), it connects only while holding
    the lease, and stops applying the moment a renewal fails; give the sink a `LeaseFence`
    on the same lease so a write that races the loss is refused too.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        pbx: str,
        sink: EventSink,
        open_calls: OpenCalls,
        live_sink: LiveSink | None = None,
        ping_interval_s: float = 5.0,
        dead_after_s: float = 15.0,
        registry: CollectorRegistry | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        lease: PbxLease | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.pbx = pbx
        self.leaseholder = Leaseholder(lease) if lease is not None else None
        self._stopping = asyncio.Event()
        self.pipeline = EventPipeline(
            pbx,
            sink,
            live_sink=live_sink,
            metrics=PipelineMetrics.of(registry) if registry is not None else None,
            observer=observer,
        )
        self._live = live_sink is not None
        self.clock = PbxClock()
        self._open_calls = open_calls
        self.client = AmiClient(
            host,
            port,
            username,
            secret,
            on_frame=self._on_frame,
            on_connected=self._on_connected,
            ping_interval_s=ping_interval_s,
            dead_after_s=dead_after_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            pbx=pbx,
            registry=registry,
            events=EVENTS_READ,
        )
        self.resync_events = 0

    async def _on_frame(self, frame: Frame, arrival: datetime) -> None:
        self.clock.observe(frame, arrival)
        self.pipeline.feed(frame, arrival)

    async def _on_connected(self, client: AmiClient) -> None:
        """Take a snapshot and bring open calls in line with what the PBX has now."""
        await self.pipeline.flush()
        if self.pipeline.observer is not None:
            self.pipeline.observer.reset()
        channels, queues = await client.snapshot()
        snapshot = snapshot_from_frames([*channels, *queues])
        now = self.clock.now()
        result = reconcile(
            await self._open_calls(),
            snapshot,
            pbx=self.pbx,
            now=now,
            previous=self.pipeline.state,
        )
        self.pipeline.state = result.state
        self.pipeline.push(result.events)
        if self._live:
            self.pipeline.push([queue_snapshot(snapshot, pbx=self.pbx, now=now)])
        self.resync_events += len(result.events)
        await self.pipeline.flush()

    async def run(self) -> None:
        """Until `stop()`: keep the link up and every event applied (while holding the lease,
        when there is one; cancelling abandons the queued events and leaves the lease to
        expire, as a crash would)."""
        self._stopping.clear()
        if self.leaseholder is None:
            await self._run_link()
            return
        while not self._stopping.is_set():
            grant = await self.leaseholder.acquire(self._stopping)
            if grant is None:
                return
            await self._hold(self.leaseholder, grant)

    async def _run_link(self) -> None:
        if self.leaseholder is not None and self._stopping.is_set():
            return  # `stop()` came between taking the lease and connecting
        self.pipeline.start()
        try:
            await self.client.run()
        except asyncio.CancelledError:
            await self.pipeline.abandon()
            raise
        finally:
            await self.pipeline.stop()

    async def _hold(self, holder: Leaseholder, grant: LeaseGrant) -> None:
        """One term: the link runs until `stop()`, a failed renewal or a refused write."""
        self.pipeline.lease_lost.clear()
        link = asyncio.create_task(self._run_link(), name=f"pbx-link-{self.pbx}")
        keeper = asyncio.create_task(holder.keep(grant), name=f"pbx-lease-{self.pbx}")
        refused = asyncio.create_task(self.pipeline.lease_lost.wait())
        try:
            await asyncio.wait({link, keeper, refused}, return_when=asyncio.FIRST_COMPLETED)
            if link.done():
                await holder.release(grant)
                link.result()  # AmiLoginError: a wrong secret is not retried
                return
            log.warning("PBX %s: lease lost (token %d); standing by", self.pbx, grant.fencing_token)
            holder.lease.grant = None
            await self.pipeline.abandon()
            # A write refused because Redis could not be asked may leave the lease ours: give
            # it up (compare-and-delete) rather than make everyone wait for it to expire.
            await holder.release(grant)
        finally:
            for task in (keeper, refused, link):
                task.cancel()
            await asyncio.gather(keeper, refused, link, return_exceptions=True)

    async def stop(self) -> None:
        self._stopping.set()
        await self.client.stop()

    def health(self) -> dict[str, Any]:
        values = asdict(self.client.health)
        values.update(
            pbx=self.pbx,
            call_events=self.pipeline.events,
            queue_events=self.pipeline.queue_events,
            events_set_aside=self.pipeline.poisoned,
            resync_events=self.resync_events,
        )
        if self.leaseholder is not None:
            grant = self.leaseholder.lease.grant
            values.update(
                lease_held=grant is not None,
                fencing_token=grant.fencing_token if grant else None,
                lease_terms=self.leaseholder.terms,
            )
        return health_snapshot(values)
