"""The live queue views in Redis, shared by every process (`SharedViews` of `board.py`).

The process that follows a PBX (its adapter's live sink) writes each queue view it sends as
`queues.updated`; API processes show those. Keys, under `prefix` (`callcenter:queues:`):

- `views`: a hash, `<pbx>/<queue>` → the queue's `QueueView` as JSON (PBX names have no `/`).
- `targets`: a pub/sub channel; a message is the name of a queue whose settings changed.

A view is written before its `queues.updated` event is published, so a realtime snapshot
(stream positions first, then the board) never shows a view older than the events it is
followed by. An announcement lost to a dropped connection is caught up by the board's
periodic refresh (`queues_refresh_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from callcenter.queues.schemas import QueueView
from callcenter.realtime.streams import StreamsUnavailable

log = logging.getLogger(__name__)


def aged(view: QueueView, now: datetime) -> QueueView:
    """`view` at `now`: the waits counted from their `since` (all else changes by events)."""
    waiting = [
        caller.model_copy(update={"wait_s": max(0.0, (now - caller.since).total_seconds())})
        for caller in view.waiting
    ]
    longest = max((caller.wait_s for caller in waiting), default=None)
    return view.model_copy(update={"waiting": waiting, "longest_wait_s": longest})


class RedisQueueViews:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "callcenter:queues:",
        timeout_s: float = 2.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._views_key = f"{prefix}views"
        self._channel = f"{prefix}targets"
        self._timeout_s = timeout_s
        self._max_backoff_s = max_backoff_s
        self._redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,  # finds a silently dead announcements connection
        )
        self._listener: asyncio.Task[None] | None = None

    async def put(self, view: QueueView) -> None:
        try:
            await self._redis.hset(
                self._views_key, f"{view.pbx}/{view.queue}", view.model_dump_json()
            )
        except (RedisError, OSError) as exc:
            # The next change of the queue writes it again; until then others show the last.
            log.warning("live view of %s/%s not shared: %s", view.pbx, view.queue, exc)

    async def remove(self, pbx: str, queue: str) -> None:
        try:
            await self._redis.hdel(self._views_key, f"{pbx}/{queue}")
        except (RedisError, OSError) as exc:
            log.warning("live view of %s/%s not removed: %s", pbx, queue, exc)

    async def all(self, now: datetime) -> list[QueueView]:
        try:
            stored = await self._redis.hgetall(self._views_key)
        except (RedisError, OSError) as exc:
            raise StreamsUnavailable(str(exc)) from exc
        views = []
        for field, raw in stored.items():
            try:
                views.append(aged(QueueView.model_validate_json(raw), now))
            except ValidationError:
                log.warning("shared live view %s is not a queue view; skipped", field)
        return views

    async def announce_targets(self, queue: str) -> None:
        try:
            await self._redis.publish(self._channel, queue)
        except (RedisError, OSError) as exc:
            log.warning("settings change of queue %s not announced: %s", queue, exc)

    def listen_targets(self, changed: Callable[[str], Awaitable[None]]) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(changed), name="queue-targets")

    async def _listen(self, changed: Callable[[str], Awaitable[None]]) -> None:
        delay = 0.05
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    delay = 0.05
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self._timeout_s / 2
                        )
                        if message is not None:
                            await self._deliver(changed, str(message["data"]))
            except (RedisError, OSError) as exc:
                log.warning("queue settings announcements lost Redis (%s); reconnecting", exc)
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311
            delay = min(delay * 2, self._max_backoff_s)

    @staticmethod
    async def _deliver(changed: Callable[[str], Awaitable[None]], queue: str) -> None:
        try:
            await changed(queue)
        except Exception:
            log.exception("settings change of queue %s not applied", queue)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()
