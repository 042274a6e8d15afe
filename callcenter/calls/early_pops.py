"""Screen pops ahead of the call record: the card goes out as the phone rings, not after the
batch that records the ring has committed.

The call sink applies events in batches, one transaction each. When the adapter is busy a
pop would wait for the batch in flight and then for its own (tens of milliseconds on a
small machine at 100 calls/s). A pop needs no write, though: the call's state is the pure
`apply` over the call's events in order (the sink folds the same events the same way), its
card comes from read-only queries, and its id is reserved from the calls' sequence before
the call is stored (the sink inserts the call under that id).

So the adapter shows each live event here as it translates it (`observe`), and a ring of a
call watched from its first event is popped at once by a worker of its own. Each such pop
is a claim, by call and user topic, in ring order (`IngestCaches.ring_claims`); ingest
takes the rings popped here out of its notifications and waits for a pop still in flight
before it publishes anything later about that call, so a user's events keep their order.

Only calls seen from their first event on the live link are watched (PostgreSQL only:
SQLite has no sequence to reserve ids from). After a (re)connect or a lost lease the
watch starts over, and the calls seen before pop the usual way. A ring whose card needs a
write first (an unknown caller while clients are auto-created) is handed back to ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls import repository
from callcenter.calls.agents import extension_of
from callcenter.calls.service import (
    IngestCaches,
    IngestPolicy,
    call_summary,
    caller_cards,
    caller_lookup,
    creates_client,
    match_owners,
    write_state,
)
from callcenter.calls.state import CallState, CallStatus, RingStarted, apply
from callcenter.clients import service as clients
from callcenter.clients.schemas import Owner
from callcenter.events import CallEvent, CallStarted
from callcenter.metric_sets import PerRegistry
from callcenter.realtime.streams import OutgoingEvent, Streams, user_topic

log = logging.getLogger(__name__)

Card = dict[str, Any]


@dataclass(slots=True)
class _Watched:
    call_id: int
    state: CallState | None = None


@dataclass(slots=True)
class _Ring:
    call_id: int
    state: CallState
    topics: list[str]
    done: asyncio.Future[bool]
    """On the adapter's loop: whether the pop went out."""


@dataclass(frozen=True, slots=True)
class LaneParts:
    """What the pops are made with: a database and the streams, on the lane's own loop."""

    sessionmaker: async_sessionmaker[AsyncSession]
    streams: Streams
    close: Callable[[], Awaitable[None]]


LanePartsFactory = Callable[[], LaneParts]
"""Makes the lane's parts; called on the lane's loop (connections belong to one loop)."""

EarlyPopsFactory = Callable[[IngestPolicy, IngestCaches], "EarlyPops"]


class EarlyPopMetrics(PerRegistry):
    """Rings popped early, and rings left to the batches (one set per registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        rings = Counter(
            "callcenter_early_pops",
            "Rings of watched calls: popped before their batch committed, or left to the"
            " batch (a card that needs a write, a database or streams error, a lane that is off).",
            ["result"],
            registry=registry,
        )
        self.popped = rings.labels("popped")
        self.left_to_batch = rings.labels("left_to_batch")


class EarlyPops:
    """One adapter's early pops: the watch over its live calls (on the adapter's loop) and
    the lane that pops.

    With `own_thread`, the lane runs on a loop of its own in a thread of its own, with
    `parts` made there: the adapter's loop is busy with batches at high call rates, and a
    pop that took its turns there would wait behind them at every query. The GIL is handed
    over every `switch_interval_s` then (the interpreter default is 5 ms), so the lane does
    not wait long for the adapter's Python code either.
    """

    def __init__(
        self,
        parts: LanePartsFactory,
        policy: IngestPolicy,
        caches: IngestCaches,
        metrics: EarlyPopMetrics,
        *,
        own_thread: bool = False,
        reserve: int = 256,
        max_watched: int = 20_000,
        switch_interval_s: float = 0.0005,
    ) -> None:
        self._make_parts = parts
        self._policy = policy
        self._caches = caches
        self._own_thread = own_thread
        self._switch_interval_s = switch_interval_s
        self._reserve = reserve
        self._max_watched = max_watched
        self._watched: dict[tuple[str, str], _Watched] = {}
        self._ids: deque[int] = deque()
        """Reserved ids (filled by the lane, taken by `observe`: deque ends are thread-safe)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lane_loop: asyncio.AbstractEventLoop | None = None
        self._lane_task: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self._rings: list[_Ring] = []
        """Rings for the lane (touched on the lane's loop only)."""
        self._wakeup: asyncio.Event | None = None
        self._refilling = False
        self._off = False
        """Set when the lane could not start: every ring is left to ingest then."""
        self._metrics = metrics

    def observe(self, events: Sequence[CallEvent]) -> None:
        """Fold live call events (in arrival order, before the sink gets them) and pop the
        rings they start."""
        for event in events:
            key = (event.pbx, event.call_key)
            watched = self._watched.get(key)
            if watched is None:
                watched = self._watch(key, event)
                if watched is None:
                    continue
            state, effects = apply(watched.state, event)
            watched.state = state
            for effect in effects:
                if isinstance(effect, RingStarted):
                    self._claim(key, watched.call_id, state, effect.agent)
            if state.status is CallStatus.ENDED:
                del self._watched[key]
        if len(self._ids) < self._reserve // 2 and not self._refilling:
            self._refilling = True
            self._submit(None)

    def reset(self) -> None:
        """Forget every watched call and every ring not applied yet (after a reconnect's
        flush, or when the queued events were dropped with a lost lease)."""
        self._watched.clear()
        self._caches.assigned_ids.clear()
        self._caches.ring_claims.clear()

    async def close(self) -> None:
        """Stop the lane; rings not popped yet are left to ingest."""
        lane_loop, task = self._lane_loop, self._lane_task
        if lane_loop is None or task is None:
            return
        if self._own_thread:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._stop_lane(), lane_loop)
            )
            lane_loop.call_soon_threadsafe(lane_loop.stop)
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join)
            lane_loop.close()
        else:
            await self._stop_lane()
        self._lane_loop = self._lane_task = self._thread = None

    def _watch(self, key: tuple[str, str], event: CallEvent) -> _Watched | None:
        """Start watching a call at its first event, under an id reserved for it."""
        if (
            not isinstance(event, CallStarted)
            or key in self._caches.unwatched
            or len(self._watched) >= self._max_watched
            or not self._ids
        ):
            return None
        watched = self._watched[key] = _Watched(self._ids.popleft())
        self._caches.assigned_ids[key] = watched.call_id
        return watched

    def _claim(self, key: tuple[str, str], call_id: int, state: CallState, agent: str) -> None:
        users = self._caches.agents.cached(extension_of(agent))
        if not users or key in self._caches.unwatched or self._off:
            return  # an extension not known yet: ingest reads the directory and pops it
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        topics = [user_topic(uid) for uid in users]
        by_topic = self._caches.ring_claims.setdefault(key, {})
        for topic in topics:
            by_topic.setdefault(topic, deque()).append(done)
        self._submit(_Ring(call_id, state, topics, done))

    # -- the lane ------------------------------------------------------------------------

    def _submit(self, ring: _Ring | None) -> None:
        """Hand a ring (None: a wake-up to reserve ids) to the lane, starting it first."""
        if self._lane_loop is None:
            self._start_lane()
        assert self._lane_loop is not None
        if self._own_thread:
            self._lane_loop.call_soon_threadsafe(self._take, ring)
        else:
            self._take(ring)

    def _start_lane(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._own_thread:
            self._lane_loop = self._loop
            self._lane_task = self._loop.create_task(self._work(), name="early-pops")
            return
        lane_loop = self._lane_loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(lane_loop)
            self._lane_task = lane_loop.create_task(self._work(), name="early-pops")
            lane_loop.call_soon(started.set)
            lane_loop.run_forever()

        if sys.getswitchinterval() > self._switch_interval_s:
            sys.setswitchinterval(self._switch_interval_s)
        self._thread = threading.Thread(target=run, name="early-pops", daemon=True)
        self._thread.start()
        started.wait()

    def _take(self, ring: _Ring | None) -> None:
        if ring is not None:
            self._rings.append(ring)
        if self._wakeup is not None:
            self._wakeup.set()

    async def _stop_lane(self) -> None:
        if self._lane_task is not None:
            self._lane_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lane_task

    async def _work(self) -> None:
        self._wakeup = asyncio.Event()
        self._wakeup.set()
        try:
            parts = self._make_parts()
        except Exception:
            log.exception("early pops are off: their lane could not start")
            self._off = True
            rings, self._rings = self._rings, []
            self._to_adapter(self._finish, rings, [False] * len(rings), {}, {})
            return
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._rings:
                    rings, self._rings = self._rings, []
                    try:
                        popped, cards, owners = await self._pop(parts, rings)
                    except Exception:
                        log.exception("%d rings left to the call records' batches", len(rings))
                        popped, cards, owners = [False] * len(rings), {}, {}
                    self._to_adapter(self._finish, rings, popped, cards, owners)
                if len(self._ids) < self._reserve // 2:
                    await self._reserve_ids(parts)
                    self._to_adapter(self._refilled)
        finally:
            rings, self._rings = self._rings, []
            self._to_adapter(self._finish, rings, [False] * len(rings), {}, {})
            await parts.close()

    def _to_adapter(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        if self._own_thread:
            with contextlib.suppress(RuntimeError):  # the adapter's loop is closed already
                self._loop.call_soon_threadsafe(callback, *args)
        else:
            callback(*args)

    def _finish(
        self,
        rings: list[_Ring],
        popped: list[bool],
        cards: dict[tuple[str, str], Card],
        owners: dict[str, list[Owner]],
    ) -> None:
        """On the adapter's loop: keep the cards and owners for ingest, settle the claims."""
        for key, card in cards.items():
            self._caches.cards.put(key, card)
        if len(self._caches.lane_owners) > self._max_watched:
            self._caches.lane_owners.clear()  # left by calls ingest identified first
        read_at = time.monotonic()
        for number, found in owners.items():
            self._caches.lane_owners[number] = (read_at, found)
        for ring, went_out in zip(rings, popped, strict=True):
            if not ring.done.done():
                ring.done.set_result(went_out)
            (self._metrics.popped if went_out else self._metrics.left_to_batch).inc()

    def _refilled(self) -> None:
        self._refilling = False

    async def _pop(
        self, parts: LaneParts, rings: list[_Ring]
    ) -> tuple[list[bool], dict[tuple[str, str], Card], dict[str, list[Owner]]]:
        """Publish the rings' pops (one query per kind for all of them, one publish);
        whether each went out, the cards made and the owners read."""
        nothing: tuple[list[bool], dict[tuple[str, str], Card], dict[str, list[Owner]]] = (
            [False] * len(rings),
            {},
            {},
        )
        try:
            async with parts.sessionmaker() as session:
                records = [self._record(ring) for ring in rings]
                owners = await clients.owners_by_e164(
                    session, {n for r in records if (n := caller_lookup(self._policy, r))}
                )
                outgoing: list[int] = []
                for index, record in enumerate(records):
                    found = owners.get(record.caller_e164 or "")
                    if found is not None and creates_client(self._policy, record, found):
                        continue  # the card is made by a write: ingest pops this one
                    match_owners(record, found or [])
                    outgoing.append(index)
                made = await caller_cards(
                    session, self._policy, [records[i] for i in outgoing], owners
                )
        except (OperationalError, DBAPIError, OSError) as exc:
            log.info("%d rings left to the call records' batches (%s)", len(rings), exc)
            return nothing
        except Exception:
            log.exception("%d rings left to the call records' batches", len(rings))
            return nothing
        events: list[OutgoingEvent] = []
        cards: dict[tuple[str, str], Card] = {}
        for index, card in zip(outgoing, made, strict=True):
            record = records[index]
            cards[(record.pbx, record.call_key)] = card
            payload = {"call": call_summary(record), "card": card}
            events.extend((topic, "call.ringing", payload) for topic in rings[index].topics)
        if events and not all(await parts.streams.publish_many(events)):
            # Dropped by the streams: ingest publishes them once the streams are back.
            return nothing
        chosen = set(outgoing)
        return [index in chosen for index in range(len(rings))], cards, owners

    def _record(self, ring: _Ring) -> repository.CallRecord:
        state = ring.state
        assert state.started_at is not None
        record = repository.CallRecord(
            pbx=state.pbx,
            call_key=state.call_key,
            direction=state.direction,
            status=state.status,
            started_at=state.started_at,
            id=ring.call_id,
        )
        write_state(record, state)
        return record

    async def _reserve_ids(self, parts: LaneParts) -> None:
        try:
            async with parts.sessionmaker() as session:
                self._ids.extend(await repository.reserve_call_ids(session, self._reserve))
        except (OperationalError, DBAPIError, OSError) as exc:
            log.info("no call ids reserved for early pops (%s)", exc)
