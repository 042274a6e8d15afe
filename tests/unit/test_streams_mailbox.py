"""The subscriptions' mailbox (a one-consumer FIFO that holds nothing while idle) and the
feed a websocket reads it through."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.realtime.streams import Feed, Mailbox, ReplayGap, StreamEnd, StreamEvent


async def test_given_items_put_then_they_come_out_in_order() -> None:
    box: Mailbox[int] = Mailbox()
    for n in range(3):
        box.put(n)

    assert len(box) == 3
    assert [await box.get() for _ in range(3)] == [0, 1, 2]
    assert len(box) == 0


async def test_given_a_waiting_consumer_when_an_item_is_put_then_it_gets_it() -> None:
    box: Mailbox[str] = Mailbox()
    getting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not getting.done()

    box.put("a")
    box.put("b")

    assert await asyncio.wait_for(getting, 5) == "a"
    assert await box.get() == "b"


async def test_given_a_cancelled_get_then_no_item_is_lost_and_the_next_get_waits_anew() -> None:
    box: Mailbox[str] = Mailbox()
    first = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first

    second = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put("kept")

    assert await asyncio.wait_for(second, 5) == "kept"


async def test_given_an_item_put_before_the_waiter_runs_when_cancelled_then_it_stays() -> None:
    box: Mailbox[str] = Mailbox()
    getting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put("kept")
    getting.cancel()  # woken, but cancelled before it took the item
    with pytest.raises(asyncio.CancelledError):
        await getting

    assert len(box) == 1
    assert await box.get() == "kept"


def _event(n: int) -> StreamEvent:
    return StreamEvent(f"e-{n}", f'{{"n":{n}}}')


async def test_given_a_feed_then_poll_takes_what_is_there_and_when_ready_calls_back_once() -> None:
    box: Mailbox[StreamEvent | StreamEnd] = Mailbox()
    feed = Feed(box)
    calls: list[str] = []
    feed.when_ready(lambda: calls.append("ready"))
    assert feed.poll() is None

    box.put(_event(1))
    box.put(_event(2))

    assert calls == ["ready"]
    assert [feed.poll(), feed.poll(), feed.poll()] == [_event(1), _event(2), None]
    feed.when_ready(lambda: calls.append("again"))
    feed.when_ready(None)  # cancelled
    box.put(_event(3))
    assert calls == ["ready"]
    feed.when_ready(lambda: calls.append("at once"))  # an event is there already
    assert calls == ["ready", "at once"]


async def test_given_the_end_then_a_feed_ends_and_stays_ended() -> None:
    box: Mailbox[StreamEvent | StreamEnd] = Mailbox()
    box.put(_event(1))
    box.put(StreamEnd())
    feed = Feed(box)

    assert [event async for event in feed] == [_event(1)]
    assert feed.ended
    assert feed.poll() is None
    calls: list[str] = []
    feed.when_ready(lambda: calls.append("ended"))
    assert calls == ["ended"]


async def test_given_lost_events_then_a_feed_raises_the_gap_on_poll_and_iteration() -> None:
    box: Mailbox[StreamEvent | StreamEnd] = Mailbox()
    box.put(StreamEnd(ReplayGap("user:1")))
    feed = Feed(box)

    with pytest.raises(ReplayGap):
        feed.poll()
    assert feed.ended
    with pytest.raises(ReplayGap):
        await anext(feed)
