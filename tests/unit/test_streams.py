"""The numbered streams' contract (replay after a reconnect, gaps, epochs), the same for the
in-memory backend and for Redis Streams (`redis`: a real Redis, one key prefix per test)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import (
    InMemoryStreams,
    RawJson,
    ReplayGap,
    StreamEvent,
    Streams,
    Subscription,
    parse_event_id,
)
from tests.redis_streams_support import STREAMS_REDIS_URL, delete_keys, need_streams_redis

MakeStreams = Callable[..., Streams]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_streams(request: pytest.FixtureRequest) -> AsyncIterator[MakeStreams]:
    """`make_streams(replay_size=..., deployment=...)`: a backend's streams. Two Redis ones of
    the same deployment share their history (two processes); in memory every one is its own."""
    prefix = f"test:{secrets.token_hex(4)}:"
    made: list[Streams] = []
    if request.param == "redis":
        need_streams_redis()

    def make(replay_size: int = 1000, deployment: str = "a") -> Streams:
        streams: Streams
        if request.param == "memory":
            streams = InMemoryStreams(replay_size=replay_size)
        else:
            streams = RedisStreams(
                STREAMS_REDIS_URL, replay_size=replay_size, prefix=f"{prefix}{deployment}:"
            )
        made.append(streams)
        return streams

    yield make
    for streams in made:
        await streams.close()
    if request.param == "redis":
        await delete_keys(prefix)


async def _take(events: asyncio.Queue[StreamEvent], n: int) -> list[dict[str, object]]:
    return [json.loads((await asyncio.wait_for(events.get(), 2)).data) for _ in range(n)]


async def _collect(
    streams: Streams, topics: list[str], last: dict[str, str]
) -> tuple[Subscription, asyncio.Queue[StreamEvent], asyncio.Task[None]]:
    sub = await streams.subscribe(topics, last)
    queue: asyncio.Queue[StreamEvent] = asyncio.Queue()

    async def pump() -> None:
        async for event in sub:
            queue.put_nowait(event)

    task = asyncio.create_task(pump())
    return sub, queue, task


async def test_given_missed_events_when_resuming_from_last_id_then_exactly_those_arrive(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams(replay_size=10)
    first = await streams.publish("user:1", "a", {"n": 1})
    await streams.publish("user:1", "b", {"n": 2})
    await streams.publish("user:1", "c", {"n": 3})
    sub, queue, task = await _collect(streams, ["user:1"], {"user:1": first})
    assert [e["n"] for e in await _take(queue, 2)] == [2, 3]
    await streams.publish("user:1", "d", {"n": 4})
    assert [e["type"] for e in await _take(queue, 1)] == ["d"]
    assert queue.empty()
    await sub.close()
    await task


async def test_given_an_event_then_its_data_is_the_whole_event_with_its_id(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams()
    before = await streams.last_id("user:1")
    event_id = await streams.publish("user:1", "call.ringing", {"caller": "Мария", "n": 1})
    sub, queue, task = await _collect(streams, ["user:1"], {"user:1": before})

    (event,) = await _take(queue, 1)

    assert event == {
        "id": event_id,
        "topic": "user:1",
        "type": "call.ringing",
        "caller": "Мария",
        "n": 1,
    }
    assert event_id == await streams.last_id("user:1")
    await sub.close()
    await task


async def test_given_a_payload_already_in_json_then_the_event_carries_it_as_json(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams()
    before = await streams.last_id("supervisors")
    view = RawJson(json.dumps({"queue": "support", "agents": [{"name": "Анна"}]}))
    event_id = await streams.publish("supervisors", "queues.updated", {"n": 1, "queue": view})
    sub, queue, task = await _collect(streams, ["supervisors"], {"supervisors": before})

    (event,) = await _take(queue, 1)

    assert event == {
        "id": event_id,
        "topic": "supervisors",
        "type": "queues.updated",
        "n": 1,
        "queue": {"queue": "support", "agents": [{"name": "Анна"}]},
    }
    await sub.close()
    await task


async def test_given_up_to_date_client_when_resuming_then_nothing_is_replayed(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams()
    await streams.publish("user:1", "a", {})
    last = await streams.last_id("user:1")
    sub, queue, task = await _collect(streams, ["user:1"], {"user:1": last})
    await streams.publish("user:2", "other-user", {})
    await streams.publish("user:1", "mine", {})
    assert [e["type"] for e in await _take(queue, 1)] == ["mine"]
    await sub.close()
    await task


async def test_given_two_topics_when_following_both_then_each_keeps_its_own_order(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams()
    last = {t: await streams.last_id(t) for t in ("user:1", "supervisors")}
    sub, queue, task = await _collect(streams, ["user:1", "supervisors"], last)
    for n in range(5):
        await streams.publish("user:1", "mine", {"n": n})
        await streams.publish("supervisors", "board", {"n": n})

    events = await _take(queue, 10)

    for topic in ("user:1", "supervisors"):
        assert [e["n"] for e in events if e["topic"] == topic] == list(range(5))
    await sub.close()
    await task


async def test_given_history_trimmed_when_resuming_from_older_id_then_reload_is_required(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams(replay_size=3)
    first = await streams.publish("user:1", "a", {})
    # Redis trims whole nodes of 100 entries (`MAXLEN ~`): enough events to drop some.
    for n in range(250):
        await streams.publish("user:1", "x", {"n": n})
    with pytest.raises(ReplayGap):
        await streams.subscribe(["user:1"], {"user:1": first})


async def test_given_id_from_another_epoch_when_resuming_then_reload_is_required(
    make_streams: MakeStreams,
) -> None:
    old = make_streams(deployment="old")
    stale = await old.publish("user:1", "a", {})
    restarted = make_streams(deployment="restarted")
    await restarted.publish("user:1", "a", {})
    with pytest.raises(ReplayGap):
        await restarted.subscribe(["user:1"], {"user:1": stale})
    with pytest.raises(ReplayGap):
        await restarted.subscribe(["user:1"], {"user:1": "garbage"})


async def test_given_id_beyond_the_last_event_when_resuming_then_reload_is_required(
    make_streams: MakeStreams,
) -> None:
    streams = make_streams()
    last = await streams.publish("user:1", "a", {})
    epoch, seq = parse_event_id(last) or ("", 0)
    with pytest.raises(ReplayGap):
        await streams.subscribe(["user:1"], {"user:1": f"{epoch}-{seq + 1}"})


def test_event_ids_are_epoch_and_sequence() -> None:
    assert parse_event_id("ab12-7") == ("ab12", 7)
    assert parse_event_id("nonsense") is None


def test_given_a_payload_with_an_envelope_key_when_encoding_then_it_is_refused() -> None:
    from callcenter.realtime.streams import encode_event

    with pytest.raises(ValueError, match="envelope keys"):
        encode_event("e-1", "user:1", "plan.changed", {"id": 7})
