"""Redis "restarted" mid-run while events flow from a publishing process to a following one.

The real Redis is shared with other engineers' tests, so the restart is simulated as the
worst kind, a data-losing one: a relay in front of Redis drops every connection and refuses
new ones, db 11 (this test's own) is emptied with FLUSHDB, then the relay comes back. The
follower must be told to reload (its history is gone), and events must flow again to it
within 5 s, each delivered once."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import ReplayGap, StreamsUnavailable
from tests.conftest import REDIS_URL, need_service
from tests.faults.ws_client import event_seq
from tests.tcp_relay import TcpRelay

pytestmark = pytest.mark.redis

CHAOS_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/11"
RESUME_BOUND_S = 5.0
TOPIC = "user:1"


@pytest.fixture
async def relay() -> AsyncIterator[TcpRelay]:
    where = urlsplit(CHAOS_REDIS_URL)
    need_service("Redis", where.hostname or "127.0.0.1", where.port or 6379)
    proxy = TcpRelay(where.hostname or "127.0.0.1", where.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def _flush_own_db() -> None:
    redis = Redis.from_url(CHAOS_REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def test_given_redis_restarted_losing_its_data_then_followers_reload_and_pops_resume(
    relay: TcpRelay,
) -> None:
    url = f"redis://127.0.0.1:{relay.port}/11"
    prefix = f"chaos:{secrets.token_hex(4)}:"
    publisher = RedisStreams(url, prefix=prefix, max_backoff_s=0.1, command_timeout_s=0.5)
    follower = RedisStreams(
        url, prefix=prefix, max_backoff_s=0.1, command_timeout_s=0.5, block_s=0.3
    )
    loop = asyncio.get_running_loop()
    published: list[tuple[float, str]] = []
    received: list[tuple[float, str]] = []
    reloads: list[str] = []
    stop = asyncio.Event()

    async def publish() -> None:
        n = 0
        while not stop.is_set():
            event_id = await publisher.publish(TOPIC, "call.ringing", {"n": n})
            published.append((loop.time(), event_id))
            n += 1
            await asyncio.sleep(0.02)

    async def position() -> str:
        while True:
            try:
                return await follower.last_id(TOPIC)
            except StreamsUnavailable:
                await asyncio.sleep(0.05)

    async def follow() -> None:
        last = await position()
        while not stop.is_set():
            try:
                subscription = await follower.subscribe([TOPIC], {TOPIC: last})
            except ReplayGap:
                last = await position()  # the snapshot reload of a browser
                reloads.append(last)
                continue
            except StreamsUnavailable:
                await asyncio.sleep(0.05)
                continue
            try:
                async for event in subscription:
                    received.append((loop.time(), event.id))
                    last = event.id
            except ReplayGap:
                last = await position()
                reloads.append(last)
            finally:
                await subscription.close()

    try:
        tasks = [asyncio.create_task(publish()), asyncio.create_task(follow())]
        await asyncio.sleep(1.0)
        await relay.cut()
        await _flush_own_db()
        await asyncio.sleep(0.5)
        await relay.start()
        restored = loop.time()
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await publisher.close()
        await follower.close()
        redis = Redis.from_url(CHAOS_REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    ids = [event_id for _, event_id in received]
    after = [at - restored for at, _ in received if at > restored]
    dropped = sum(1 for _, event_id in published if not event_id)
    print(
        f"published {len(published)} ({dropped} dropped), received {len(ids)}, "
        f"reloads {len(reloads)}, first pops after the restore: {after[:1]}"
    )
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert reloads, "a follower whose history was lost must be told to reload"
    assert after, "no event reached the follower after the restore"
    assert after[0] <= RESUME_BOUND_S
    epoch, seen = event_seq(reloads[-1])
    owed = [i for _, i in published if i and event_seq(i)[0] == epoch and event_seq(i)[1] > seen]
    missing = set(owed) - set(ids)
    assert not missing, f"events after the reload never delivered: {sorted(missing)[:5]}"
