"""The Redis database of the realtime tests (db 13: db 14 is Celery's, 15 the lease's), and
its cleanup by key prefix."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.asyncio import Redis

from tests.conftest import REDIS_URL, need_service
from tests.tcp_relay import TcpRelay

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


class RedisProxy(TcpRelay):
    """A relay to the test Redis that a test can cut and restore on the same port: Redis
    unreachable without stopping it."""

    def __init__(self) -> None:
        where = urlsplit(STREAMS_REDIS_URL)
        super().__init__(where.hostname or "127.0.0.1", where.port or 6379)
        self._db = where.path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self._db}"
