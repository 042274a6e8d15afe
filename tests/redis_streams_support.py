"""The Redis database of the realtime tests (db 13: db 14 is Celery's, 15 the lease's), and
its cleanup by key prefix."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from redis.asyncio import Redis

from tests.conftest import REDIS_URL, need_service

STREAMS_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/13"


def need_streams_redis() -> None:
    where = urlsplit(STREAMS_REDIS_URL)
    need_service("Redis", where.hostname or "127.0.0.1", where.port or 6379)


async def delete_keys(prefix: str) -> None:
    """Remove every key under `prefix` (a test's own)."""
    redis = Redis.from_url(STREAMS_REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


class RedisProxy:
    """A TCP relay to the test Redis that a test can cut (every link dropped, new ones
    refused) and restore on the same port: Redis unreachable without stopping it."""

    def __init__(self) -> None:
        where = urlsplit(STREAMS_REDIS_URL)
        self._target = (where.hostname or "127.0.0.1", where.port or 6379)
        self._db = where.path
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self._db}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._links):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def stop(self) -> None:
        if self._server is not None:
            await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            redis_r, redis_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._links.update((client_w, redis_w))
        pipes = [
            asyncio.create_task(self._pipe(client_r, redis_w)),
            asyncio.create_task(self._pipe(redis_r, client_w)),
        ]
        self._tasks.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._tasks.difference_update(pipes)
        self._links.difference_update((client_w, redis_w))

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()
