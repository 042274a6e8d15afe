"""The in-memory numbered streams: replay after a reconnect, gaps, epochs."""

from __future__ import annotations

import asyncio
import json

import pytest

from callcenter.realtime.streams import InMemoryStreams, ReplayGap, StreamEvent, parse_event_id


async def _take(events: asyncio.Queue[StreamEvent], n: int) -> list[dict[str, object]]:
    return [json.loads((await asyncio.wait_for(events.get(), 2)).data) for _ in range(n)]


async def _collect(streams: InMemoryStreams, topics: list[str], last: dict[str, str]):
    sub = await streams.subscribe(topics, last)
    queue: asyncio.Queue[StreamEvent] = asyncio.Queue()

    async def pump() -> None:
        async for event in sub:
            queue.put_nowait(event)

    task = asyncio.create_task(pump())
    return sub, queue, task


async def test_given_missed_events_when_resuming_from_last_id_then_exactly_those_arrive() -> None:
    streams = InMemoryStreams(replay_size=10)
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


async def test_given_up_to_date_client_when_resuming_then_nothing_is_replayed() -> None:
    streams = InMemoryStreams()
    await streams.publish("user:1", "a", {})
    last = await streams.last_id("user:1")
    sub, queue, task = await _collect(streams, ["user:1"], {"user:1": last})
    await streams.publish("user:2", "other-user", {})
    await streams.publish("user:1", "mine", {})
    assert [e["type"] for e in await _take(queue, 1)] == ["mine"]
    await sub.close()
    await task


async def test_given_history_trimmed_when_resuming_from_older_id_then_reload_is_required() -> None:
    streams = InMemoryStreams(replay_size=3)
    first = await streams.publish("user:1", "a", {})
    for n in range(5):
        await streams.publish("user:1", "x", {"n": n})
    with pytest.raises(ReplayGap):
        await streams.subscribe(["user:1"], {"user:1": first})


async def test_given_id_from_another_epoch_when_resuming_then_reload_is_required() -> None:
    old = InMemoryStreams()
    stale = await old.publish("user:1", "a", {})
    restarted = InMemoryStreams()
    await restarted.publish("user:1", "a", {})
    with pytest.raises(ReplayGap):
        await restarted.subscribe(["user:1"], {"user:1": stale})
    with pytest.raises(ReplayGap):
        await restarted.subscribe(["user:1"], {"user:1": "garbage"})


def test_event_ids_are_epoch_and_sequence() -> None:
    assert parse_event_id("ab12-7") == ("ab12", 7)
    assert parse_event_id("nonsense") is None
