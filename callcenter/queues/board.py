"""This process's live queue board: fed by the PBX event path, read by the API.

`LiveQueues` is the live sink an adapter in this process hands every batch to (after the
call events of it were committed): it seeds a PBX's board from the records on first use
(today's counters survive a restart), drops events it has already applied, folds the rest
through the pure `live.fold`, keeps `agent_pauses` in line (commits), stores the new board,
and then sends each changed queue's whole view to supervisors as `queues.updated`: at once,
for every queue the batch changed, unless that queue was sent less than
`queues_publish_interval_s` ago (then at the end of the interval, so the last state is never
lost). A busy PBX makes larger batches, so views are coalesced by the batches themselves.
The KPI definitions go in snapshots only (see `schemas.KpiValue`).

Boards are kept through `BoardStore`, in this process. When the API and the adapters run
apart (`redis_url`), the process that follows a PBX (it gets its events) also writes each
queue view it sends to `SharedViews` (Redis), and every other process shows those views
instead of its own board of that PBX, which gets no events. A change of a queue's settings
is announced there too, so the process following the PBX sends the new view at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls.models import Outcome
from callcenter.config import Settings
from callcenter.events import PbxEvent, QueueSnapshot
from callcenter.kpi import KpiParams
from callcenter.queues import live, service
from callcenter.queues.live import BoardDefaults, LiveBoard, QueueTargets
from callcenter.queues.schemas import BoardSnapshot, QueueView
from callcenter.realtime.streams import SUPERVISORS_TOPIC, RawJson, Streams

log = logging.getLogger(__name__)

QUEUES_UPDATED = "queues.updated"


class BoardStore(Protocol):
    """Where the boards live between batches (one per PBX)."""

    async def get(self, pbx: str) -> LiveBoard | None: ...

    async def put(self, board: LiveBoard) -> None: ...

    async def all(self) -> list[LiveBoard]: ...


class SharedViews(Protocol):
    """The queue views of the PBXs followed by other processes (see the module docstring)."""

    async def put(self, view: QueueView) -> None: ...

    async def remove(self, pbx: str, queue: str) -> None: ...

    async def all(self, now: datetime) -> list[QueueView]:
        """Every shared view, its waits counted at `now`."""
        ...

    async def announce_targets(self, queue: str) -> None:
        """Tell the processes following PBXs that `queue`'s settings changed (committed)."""
        ...

    def listen_targets(self, changed: Callable[[str], Awaitable[None]]) -> None:
        """Call `changed(queue)` for each announcement from now on."""
        ...

    async def close(self) -> None: ...


class MemoryBoardStore:
    def __init__(self) -> None:
        self._boards: dict[str, LiveBoard] = {}

    async def get(self, pbx: str) -> LiveBoard | None:
        return self._boards.get(pbx)

    async def put(self, board: LiveBoard) -> None:
        self._boards[board.pbx] = board

    async def all(self) -> list[LiveBoard]:
        return list(self._boards.values())


Key = tuple[str, str]
"""(pbx, queue)"""


class Coalescer:
    """Calls `send(keys)` for touched keys, at most once per `interval_s` per key; a touch
    inside the interval is sent when it ends (with whatever the state is then)."""

    def __init__(self, interval_s: float, send: Callable[[list[Key]], Awaitable[None]]) -> None:
        self._interval_s = interval_s
        self._send = send
        self._last: dict[Key, float] = {}
        self._pending: dict[Key, asyncio.Task[None]] = {}

    async def send_due(self, keys: Iterable[Key]) -> None:
        """Send now, together, the keys not sent within the interval; the others later."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        due: list[Key] = []
        for key in keys:
            if key in self._pending:
                continue  # a send is due soon, and it sends the state of then
            last = self._last.get(key)
            if last is None or now >= last + self._interval_s:
                self._last[key] = now
                due.append(key)
            else:
                delay = last + self._interval_s - now
                self._pending[key] = loop.create_task(
                    self._fire(key, delay), name=f"queues-{key[1]}"
                )
        if due:
            await self._deliver(due)

    def touch(self, key: Key) -> None:
        if key in self._pending:
            return
        loop = asyncio.get_running_loop()
        last = self._last.get(key)
        delay = 0.0 if last is None else max(0.0, last + self._interval_s - loop.time())
        self._pending[key] = loop.create_task(self._fire(key, delay), name=f"queues-{key[1]}")

    async def _fire(self, key: Key, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._pending.pop(key, None)
        self._last[key] = asyncio.get_running_loop().time()
        await self._deliver([key])

    async def _deliver(self, keys: list[Key]) -> None:
        try:
            await self._send(keys)
        except Exception:
            log.exception("live queue views of %s could not be sent", keys)

    async def flush(self) -> None:
        """Wait until every pending send is done."""
        while self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in self._pending.values():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._pending.values(), return_exceptions=True)
        self._pending.clear()


_NO_DEFINITIONS = {"kpis": {"__all__": {"definition"}}}
"""What `queues.updated` leaves out of a view: the KPI definitions are in the snapshot."""


class LiveQueues:
    """The live queue boards of this process (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        streams: Streams,
        settings: Settings,
        *,
        store: BoardStore | None = None,
        shared: SharedViews | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        remember_ids: int = 20_000,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._streams = streams
        self._settings = settings
        self._tz = ZoneInfo(settings.timezone)
        self._defaults = BoardDefaults(
            service_level_s=float(settings.default_service_level_s),
            short_abandon_s=settings.short_abandon_s,
        )
        self._store = store or MemoryBoardStore()
        self._shared = shared
        self._fed: set[str] = set()
        """The PBXs whose events this process gets (whose boards it follows)."""
        self._clock = clock
        self._lock = asyncio.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._remember_ids = remember_ids
        self._max_backoff_s = max_backoff_s
        self._targets: dict[str, QueueTargets] = {}
        self._refreshed_at: datetime | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._index: tuple[LiveBoard, live.BoardIndex] | None = None
        """The last board whose views were made, and what they share."""
        self._publisher = Coalescer(settings.queues_publish_interval_s, self._publish)
        self.events = 0
        self.duplicates = 0

    # --- the live sink ---------------------------------------------------------------------

    async def __call__(self, events: Sequence[PbxEvent]) -> None:
        """Fold a batch (call events already committed by the call sink) into the boards."""
        if not events:
            return
        touched: set[tuple[str, str]] = set()
        async with self._lock:
            fresh = [e for e in events if (e.pbx, e.event_id) not in self._seen]
            self.duplicates += len(events) - len(fresh)
            for pbx in sorted({e.pbx for e in fresh}):
                batch = [e for e in fresh if e.pbx == pbx]
                touched.update((pbx, q) for q in await self._fold(pbx, batch))
            for event in fresh:
                self._remember(event)
            self.events += len(fresh)
            if self._shared is not None and not self._fed:
                self._shared.listen_targets(self._targets_announced)
            self._fed.update(e.pbx for e in events)
        await self._publisher.send_due(sorted(touched))
        self._refresh_soon()

    async def _fold(self, pbx: str, events: Sequence[PbxEvent]) -> set[str]:
        # A queue snapshot comes after every (re)connect, also when this process takes the
        # PBX (back) from another adapter: what happened meanwhile is in the records only,
        # so the board starts again from them (the batch's calls are committed already).
        reseed = any(isinstance(e, QueueSnapshot) for e in events)
        folded = live.fold(await self._board(pbx, reseed=reseed), events)
        if folded.pauses or folded.snapshot_at is not None:
            await self._record_pauses(pbx, folded.pauses, folded.snapshot_at)
        board = folded.board
        # Running KPI totals under the thresholds in effect (counted again only when they
        # change), so a view of a busy queue does not count the day's calls each time.
        board = live.with_kpi_params(
            board, {queue: self._kpi_params(board, queue) for queue in folded.queues}
        )
        await self._store.put(board)
        return folded.queues

    def _remember(self, event: PbxEvent) -> None:
        self._seen[(event.pbx, event.event_id)] = None
        while len(self._seen) > self._remember_ids:
            self._seen.popitem(last=False)

    async def _record_pauses(
        self, pbx: str, changes: list[live.PauseChange], complete_at: datetime | None
    ) -> None:
        delay = 0.05
        while True:
            try:
                async with self._sessionmaker() as session:
                    await service.record_pauses(session, pbx, changes, complete_at=complete_at)
                    await session.commit()
                    return
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("database refused %d pause changes (%s); retrying", len(changes), exc)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311
                delay = min(delay * 2, self._max_backoff_s)

    # --- seeding and refreshing from the records ------------------------------------------

    async def _board(self, pbx: str, *, reseed: bool = False) -> LiveBoard:
        """The PBX's board: the stored one, else (or with `reseed`) one seeded from today's
        records."""
        board = None if reseed else await self._store.get(pbx)
        if board is not None:
            return board
        day = self._clock().astimezone(self._tz).date()
        async with self._sessionmaker() as session:
            inputs = await service.seed_inputs(session, pbx, day, self._tz)
            if self._refreshed_at is None:
                self._targets = await service.all_targets(session)
        board = live.seed(LiveBoard(pbx=pbx, tz=self._tz), inputs.open_calls, inputs.facts, day=day)
        board = live.with_kpi_params(
            board, {queue: self._kpi_params(board, queue) for queue in live.queues_of(board)}
        )
        await self._store.put(board)
        self._refreshed_at = self._refreshed_at or self._clock()
        return board

    def _refresh_soon(self) -> None:
        """Start the periodic re-read when it is due, beside the batches: a batch waits for
        nothing but its own views."""
        if self._refreshing is not None and not self._refreshing.done():
            return
        last = self._refreshed_at
        if last is None or (self._clock() - last).total_seconds() < self._settings.queues_refresh_s:
            return
        self._refreshing = asyncio.create_task(self._refresh_and_send(), name="queues-refresh")

    async def _refresh_and_send(self) -> None:
        try:
            touched = await self._refresh_if_due()
        except Exception:
            log.exception("live queues not refreshed from the records; tried again later")
            return
        for key in sorted(touched):
            self._publisher.touch(key)

    async def _refresh_if_due(self) -> set[tuple[str, str]]:
        """Re-read outcomes changed since the last time (a wrong number leaves the service
        level) and the queue settings; the queues whose view changed. The records are read
        without holding the boards, which only the changes found wait for."""
        now = self._clock()
        last = self._refreshed_at
        if last is None or (now - last).total_seconds() < self._settings.queues_refresh_s:
            return set()
        self._refreshed_at = now
        found: dict[str, dict[str, Outcome | None]] = {}
        async with self._sessionmaker() as session:
            targets = await service.all_targets(session)
            for board in await self._store.all():
                if board.day is not None:
                    found[board.pbx] = await service.changed_outcomes(
                        session, board.pbx, board.day, self._tz, since=last
                    )
        touched: set[tuple[str, str]] = set()
        async with self._lock:
            for board in await self._store.all():
                changed = {
                    key: outcome
                    for key, outcome in found.get(board.pbx, {}).items()
                    if any(
                        key in facts and facts[key].outcome != outcome
                        for facts in board.facts.values()
                    )
                }
                if changed:
                    updated = live.with_outcomes(board, changed)
                    await self._store.put(updated)
                    touched.update(
                        (board.pbx, q) for q, facts in board.facts.items() if changed.keys() & facts
                    )
            for queue in set(targets) | set(self._targets):
                if targets.get(queue) != self._targets.get(queue):
                    touched.update((b.pbx, queue) for b in await self._store.all())
            self._targets = targets
        return touched

    # --- reading --------------------------------------------------------------------------

    async def snapshot(self, now: datetime | None = None) -> BoardSnapshot:
        """Every queue of every board, at `now` (seeding this PBX's board if need be)."""
        async with self._lock:
            await self._board(self._settings.pbx_name)
        touched = await self._refresh_if_due()
        for key in sorted(touched):
            self._publisher.touch(key)
        at = now or self._clock()
        shared: list[QueueView] = []
        if self._shared is not None:
            shared = [v for v in await self._shared.all(at) if v.pbx not in self._fed]
        elsewhere = {v.pbx for v in shared}
        views = [
            self._view(board, queue, at)
            for board in await self._store.all()
            if board.pbx not in elsewhere
            for queue in live.queues_of(board)
        ]
        return BoardSnapshot(
            at=at,
            timezone=self._settings.timezone,
            day=at.astimezone(self._tz).date(),
            queues=sorted(views + shared, key=lambda v: (v.pbx, v.queue)),
        )

    def _kpi_params(self, board: LiveBoard, queue: str) -> KpiParams:
        targets = self._targets.get(queue, QueueTargets())
        return live.kpi_params(board, queue, targets, self._defaults)

    def _view(self, board: LiveBoard, queue: str, now: datetime) -> QueueView:
        if self._index is None or self._index[0] is not board:
            self._index = (board, live.index_of(board))
        targets = self._targets.get(queue, QueueTargets())
        return live.queue_view(board, queue, now, targets, self._defaults, index=self._index[1])

    async def queue_view(self, pbx: str, queue: str, now: datetime | None = None) -> QueueView:
        board = await self._store.get(pbx) or LiveBoard(pbx=pbx, tz=self._tz)
        return self._view(board, queue, now or self._clock())

    # --- changes from elsewhere -----------------------------------------------------------

    async def targets_changed(self, queue: str, targets: QueueTargets) -> None:
        """Supervisors changed a queue's settings (committed): show it now."""
        async with self._lock:
            self._targets[queue] = targets
            boards = await self._store.all()
        for board in boards:
            if queue in live.queues_of(board):
                self._publisher.touch((board.pbx, queue))
        if self._shared is not None:
            await self._shared.announce_targets(queue)

    async def _targets_announced(self, queue: str) -> None:
        """Some process changed `queue`'s settings: send its views of the PBXs followed here."""
        async with self._sessionmaker() as session:
            targets = await service.all_targets(session)
        async with self._lock:
            self._targets = targets
            boards = await self._store.all()
        for board in boards:
            if board.pbx in self._fed and queue in live.queues_of(board):
                self._publisher.touch((board.pbx, queue))

    async def _publish(self, keys: list[Key]) -> None:
        now = self._clock()
        for pbx, queue in keys:
            if self._shared is not None and pbx not in self._fed:
                continue  # another process follows this PBX: it shares and sends the views
            board = await self._store.get(pbx) or LiveBoard(pbx=pbx, tz=self._tz)
            view = self._view(board, queue, now)
            if self._shared is not None:
                # Before the event: a snapshot read after the stream positions is never older
                # than what the events after them carry.
                if queue in live.queues_of(board):
                    await self._shared.put(view)
                else:
                    await self._shared.remove(pbx, queue)
            # ASCII (names as \u escapes): the text is encoded to bytes once per socket, and
            # an ASCII str encodes by a plain copy.
            shown = RawJson(view.model_dump_json(exclude=_NO_DEFINITIONS, ensure_ascii=True))
            await self._streams.publish(SUPERVISORS_TOPIC, QUEUES_UPDATED, {"queue": shown})

    async def flush(self) -> None:
        """Wait until every pending `queues.updated` has been sent."""
        if self._refreshing is not None:
            await asyncio.gather(self._refreshing, return_exceptions=True)
        await self._publisher.flush()

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        await self._publisher.close()
        if self._shared is not None:
            await self._shared.close()
