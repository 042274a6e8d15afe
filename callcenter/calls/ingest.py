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
from callcenter.calls.service import IngestCaches, IngestPolicy, Notification, ingest
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
    ) -> None:
        self._sessionmaker = sessionmaker
        self._fence = fence
        self._policy = policy
        self._streams = streams
        self._max_backoff_s = max_backoff_s
        self._caches = IngestCaches()
        self.batches = 0
        self.events = 0
        self.retries = 0

    async def __call__(self, events: Sequence[CallEvent]) -> None:
        if not events:
            return
        notifications = await self._commit_with_retry(events)
        self.batches += 1
        self.events += len(events)
        for note in notifications:
            await self._streams.publish(note.topic, note.type, note.payload)

    async def _commit_with_retry(self, events: Sequence[CallEvent]) -> list[Notification]:
        delay = 0.05
        while True:
            try:
                async with self._sessionmaker() as session:
                    notifications = await ingest(session, self._policy, events, self._caches)
                    if self._fence is not None:
                        # Under the PBX's write lock, so no newer holder commits in between.
                        await repository.lock_pbx_writes(session, self._fence.pbx)
                        await self._fence.check()
                    await session.commit()
                    return notifications
            except (OperationalError, DBAPIError, OSError) as exc:
                self.retries += 1
                log.warning("database refused %d call events (%s); retrying", len(events), exc)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311
                delay = min(delay * 2, self._max_backoff_s)
