"""The edge where PBX events enter the database: one transaction per batch, publish after commit."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.calls import repository
from callcenter.calls.early_pops import EarlyPopsFactory
from callcenter.calls.service import (
    IngestCaches,
    IngestPolicy,
    Notification,
    ingest,
    prefetch_cards,
)
from callcenter.events import CallEvent
from callcenter.realtime.streams import Streams

log = logging.getLogger(__name__)


class WriteFence(Protocol):
    """Whether this process may still write a PBX's calls (one adapter per PBX at a time)."""

    pbx: str

    async def check(self) -> None:
        """Raise if it may not: the transaction is then rolled back, not retried."""


class CallEventSink:
    """Applies batches of call events; retries a batch the database refused (it is idempotent)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        policy: IngestPolicy,
        streams: Streams,
        *,
        max_backoff_s: float = 5.0,
        fence: WriteFence | None = None,
        early_pops: EarlyPopsFactory | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._fence = fence
        self._policy = policy
        self._streams = streams
        self._max_backoff_s = max_backoff_s
        self._caches = IngestCaches()
        self.early = early_pops(policy, self._caches) if early_pops is not None else None
        """Pops rings ahead of their batch; the adapter shows it the live events."""
        self._prefetching: asyncio.Task[None] | None = None
        self.batches = 0
        self.events = 0
        self.retries = 0

    async def __call__(self, events: Sequence[CallEvent]) -> None:
        if not events:
            return
        notifications = await self._commit_with_retry(events)
        self.batches += 1
        self.events += len(events)
        await self._streams.publish_many([(n.topic, n.type, n.payload) for n in notifications])
        self._prefetch_soon()

    def _prefetch_soon(self) -> None:
        """Make the cards of calls that have not rung yet beside the batches (one prefetch
        at a time: calls that start meanwhile wait for the next)."""
        if self._prefetching is not None and not self._prefetching.done():
            return
        keys = self._caches.cards.take_unrung()
        if keys:
            self._prefetching = asyncio.create_task(self._prefetch(keys), name="card-prefetch")

    async def _prefetch(self, keys: list[tuple[str, str]]) -> None:
        try:
            async with self._sessionmaker() as session:
                await prefetch_cards(session, self._policy, self._caches.cards, keys)
        except (OperationalError, DBAPIError, OSError) as exc:
            # Not needed for anything but speed: the ring makes the card itself.
            log.info("cards of %d calls not made ahead of their ring (%s)", len(keys), exc)
        except Exception:
            log.exception("cards of %d calls not made ahead of their ring", len(keys))

    async def close(self) -> None:
        """Wait for a card prefetch in flight and stop the early pops (tests, shutdown)."""
        if self._prefetching is not None:
            await asyncio.gather(self._prefetching, return_exceptions=True)
        if self.early is not None:
            await self.early.close()

    async def _fenced_ingest(
        self, session: AsyncSession, fence: WriteFence, events: Sequence[CallEvent]
    ) -> list[Notification]:
        """`ingest` under the PBX's write lock, taken first, so no newer holder commits in
        between; the fence check (a Redis round trip) runs meanwhile, beside the batch's
        own statements, and must pass before the caller commits."""
        await repository.lock_pbx_writes(session, fence.pbx)
        check = asyncio.ensure_future(fence.check())
        try:
            notifications = await ingest(session, self._policy, events, self._caches)
        except BaseException:
            check.cancel()
            await asyncio.gather(check, return_exceptions=True)
            raise
        await check
        return notifications

    async def _commit_with_retry(self, events: Sequence[CallEvent]) -> list[Notification]:
        delay = 0.05
        while True:
            try:
                async with self._sessionmaker() as session:
                    if self._fence is None:
                        notifications = await ingest(session, self._policy, events, self._caches)
                    else:
                        notifications = await self._fenced_ingest(session, self._fence, events)
                    await session.commit()
                    return notifications
            except (OperationalError, DBAPIError, OSError) as exc:
                self.retries += 1
                log.warning("database refused %d call events (%s); retrying", len(events), exc)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311
                delay = min(delay * 2, self._max_backoff_s)
