"""Redis Streams across processes: several `RedisStreams` on one Redis stand for several API
processes (and adapters). Order, resume on another process, a flushed Redis, a killed
connection, Redis unreachable while events are published, and a reader left behind."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from callcenter.calls.ingest import CallEventSink
from callcenter.calls.models import Call
from callcenter.context import AppContext
from callcenter.events import CallStarted, Direction
from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import (
    ReplayGap,
    StreamEvent,
    StreamsUnavailable,
    Subscription,
    parse_event_id,
)
from tests.redis_streams_support import (
    STREAMS_REDIS_URL,
    RedisProxy,
    delete_keys,
    need_streams_redis,
)

pytestmark = pytest.mark.redis

Make = Callable[..., RedisStreams]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """`make(url=..., **options)`: one process's streams, all of one deployment (prefix)."""
    need_streams_redis()
    prefix = f"test:{secrets.token_hex(4)}:"
    made: list[RedisStreams] = []

    def build(url: str = STREAMS_REDIS_URL, **options: object) -> RedisStreams:
        options = {"max_backoff_s": 0.1, **options}
        streams = RedisStreams(url, prefix=prefix, **options)  # type: ignore[arg-type]
        made.append(streams)
        return streams

    yield build
    for streams in made:
        await streams.close()
    await delete_keys(prefix)


@pytest.fixture
async def proxy() -> AsyncIterator[RedisProxy]:
    need_streams_redis()
    relay = RedisProxy()
    await relay.start()
    yield relay
    await relay.stop()


class Follower:
    """A subscription read in the background, as a websocket would."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.events: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for event in self.subscription:
            self.events.put_nowait(event)

    async def take(self, n: int) -> list[dict[str, object]]:
        return [json.loads((await asyncio.wait_for(self.events.get(), 5)).data) for _ in range(n)]

    async def ended(self) -> None:
        """Wait for the subscription to end (raises ReplayGap if it ended with a reload)."""
        await asyncio.wait_for(self.task, 5)

    async def close(self) -> None:
        await self.subscription.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _follow(streams: RedisStreams, topics: list[str], last_ids: dict[str, str]) -> Follower:
    return Follower(await streams.subscribe(topics, last_ids))


async def _kill_clients(name: str) -> int:
    """CLIENT KILL every connection of that name (a dropped TCP link, server side)."""
    admin = Redis.from_url(STREAMS_REDIS_URL, decode_responses=True)
    try:
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == name]
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await admin.aclose()


async def test_given_two_processes_when_one_publishes_then_the_others_subscriber_gets_all_in_order(
    make: Make,
) -> None:
    adapter, api = make(), make()
    topics = ["user:1", "supervisors"]
    follower = await _follow(api, topics, {t: await api.last_id(t) for t in topics})

    published: dict[str, list[str]] = {t: [] for t in topics}
    for n in range(100):
        topic = topics[n % 2]
        published[topic].append(await adapter.publish(topic, "call.ringing", {"n": n}))
    events = await follower.take(100)

    for topic in topics:
        assert [e["id"] for e in events if e["topic"] == topic] == published[topic]
    assert [e["n"] for e in events] == list(range(100))
    seqs = [parse_event_id(i) for i in published["user:1"]]
    assert [s[1] for s in seqs if s] == list(range(1, 51))
    await follower.close()


async def test_given_a_batch_published_in_one_round_trip_then_it_arrives_in_order_between_singles(
    make: Make, proxy: RedisProxy
) -> None:
    adapter, api = make(proxy.url), make()
    topics = ["user:1", "user:2", "supervisors"]
    follower = await _follow(api, topics, {t: await api.last_id(t) for t in topics})

    first = await adapter.publish("user:1", "call.ringing", {"n": 0})
    batch = await adapter.publish_many(
        [(topics[n % 3], "call.updated", {"n": n}) for n in range(1, 31)]
    )
    last = await adapter.publish("user:2", "call.ended", {"n": 31})
    events = await follower.take(32)

    assert [e["n"] for e in events] == list(range(32))
    assert [e["id"] for e in events] == [first, *batch, last]
    user_1 = [parse_event_id(i) for i in [first, *batch[2::3]]]
    assert [seq for _, seq in filter(None, user_1)] == list(range(1, 12))

    await proxy.cut()
    dropped = await adapter.publish_many([("user:1", "call.ringing", {"n": 99})] * 3)
    assert dropped == ["", "", ""]
    await proxy.start()
    with pytest.raises(ReplayGap):
        await follower.ended()
    await follower.close()


async def test_given_a_client_moving_to_another_process_then_it_resumes_after_its_last_id(
    make: Make,
) -> None:
    adapter, first_api, second_api = make(), make(), make()
    follower = await _follow(first_api, ["user:7"], {"user:7": await first_api.last_id("user:7")})
    for n in range(3):
        await adapter.publish("user:7", "seen", {"n": n})
    seen = await follower.take(3)
    await follower.close()
    for n in range(3, 8):
        await adapter.publish("user:7", "missed", {"n": n})

    moved = await _follow(second_api, ["user:7"], {"user:7": str(seen[-1]["id"])})
    replayed = await moved.take(5)
    await adapter.publish("user:7", "live", {"n": 8})
    live = await moved.take(1)

    assert [e["n"] for e in replayed + live] == list(range(3, 9))
    assert moved.events.empty()
    await moved.close()


async def test_given_redis_flushed_then_old_ids_reload_and_live_subscribers_are_told_to_reload(
    make: Make,
) -> None:
    adapter, api = make(), make()
    stale = await adapter.publish("user:1", "before", {})
    follower = await _follow(api, ["user:1"], {"user:1": stale})
    admin = Redis.from_url(STREAMS_REDIS_URL)
    try:
        await admin.flushdb()
    finally:
        await admin.aclose()

    fresh = await adapter.publish("user:1", "after", {})

    with pytest.raises(ReplayGap):
        await follower.ended()
    with pytest.raises(ReplayGap):
        await api.subscribe(["user:1"], {"user:1": stale})
    old_epoch, new_epoch = parse_event_id(stale), parse_event_id(fresh)
    assert old_epoch is not None
    assert new_epoch is not None
    assert old_epoch[0] != new_epoch[0]
    assert await api.last_id("user:1") == fresh


async def test_given_killed_connections_then_both_sides_reconnect_and_nothing_is_lost(
    make: Make,
) -> None:
    adapter, api = make(), make()
    follower = await _follow(api, ["user:1"], {"user:1": await api.last_id("user:1")})
    await adapter.publish("user:1", "before", {"n": 0})
    assert [e["n"] for e in await follower.take(1)] == [0]
    epoch = adapter.epoch

    assert await _kill_clients(api.reader_name) == 1
    # The pooled connections too: the adapter's next publish meets a closed socket.
    assert await _kill_clients(adapter.commands_name) >= 1
    ids = [await adapter.publish("user:1", "after", {"n": n}) for n in range(1, 6)]

    assert all(ids)
    assert adapter.epoch == epoch
    assert [e["n"] for e in await follower.take(5)] == [1, 2, 3, 4, 5]
    await follower.close()


async def test_given_redis_unreachable_when_publishing_then_the_record_stays_and_clients_reload(
    make: Make, proxy: RedisProxy, ctx: AppContext
) -> None:
    adapter, api = make(proxy.url), make()
    last = await api.last_id("user:1")
    follower = await _follow(api, ["user:1"], {"user:1": last})
    sink = CallEventSink(ctx.sessionmaker, ctx.ingest_policy(), adapter)
    await proxy.cut()

    event = CallStarted(
        call_key="k1",
        event_id="k1:start",
        at=datetime.now(UTC),
        direction=Direction.INBOUND,
        caller_num="89161234567",
    )
    await asyncio.wait_for(sink([event]), 10)
    dropped = await adapter.publish("user:1", "call.ringing", {"n": 1})
    with pytest.raises(StreamsUnavailable):
        await adapter.last_id("user:1")

    async with ctx.sessionmaker() as session:
        assert (await session.scalars(select(Call.call_key))).all() == ["k1"]
    assert dropped == ""
    await proxy.start()
    with pytest.raises(ReplayGap):
        await follower.ended()
    with pytest.raises(ReplayGap):
        await api.subscribe(["user:1"], {"user:1": last})
    after = await adapter.publish("user:1", "call.ringing", {"n": 2})
    assert after.startswith(f"{api.epoch}-")


async def test_given_a_reader_behind_the_kept_events_then_its_subscribers_resume_not_reload(
    make: Make, proxy: RedisProxy
) -> None:
    adapter, api = make(firehose_size=10), make(proxy.url)
    last = await api.last_id("user:1")
    follower = await _follow(api, ["user:1"], {"user:1": last})
    await proxy.cut()
    for n in range(300):  # `all` keeps about 10 (whole nodes of 100): most are trimmed
        await adapter.publish("user:1", "x", {"n": n})

    await proxy.start()
    await follower.ended()  # ends without ReplayGap: resume, no reload
    resumed = await _follow(api, ["user:1"], {"user:1": last})
    events = await resumed.take(300)

    assert [e["n"] for e in events] == list(range(300))
    await resumed.close()
