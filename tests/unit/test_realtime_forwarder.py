"""How a websocket's events are sent: in order, by a task that exists only while events
wait, and the end of a subscription told to the client (resume, or reload after a gap)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

from fastapi import WebSocket

from callcenter.realtime.api import CLOSE_RELOAD, CLOSE_RESUME, _Forwarder
from callcenter.realtime.streams import (
    Feed,
    InMemoryStreams,
    Mailbox,
    ReplayGap,
    StreamEnd,
    StreamEvent,
)


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed_with: int | None = None

    async def send_text(self, data: str) -> None:
        await asyncio.sleep(0)  # a real send may yield to the loop
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = code


class MailboxSubscription:
    def __init__(self) -> None:
        self.mailbox: Mailbox[StreamEvent | StreamEnd] = Mailbox()

    def __aiter__(self) -> Feed:
        return Feed(self.mailbox)

    async def close(self) -> None:
        self.mailbox.put(StreamEnd())


class GeneratorSubscription:
    """A subscription whose iterator is not a `Feed`: followed by a task."""

    def __init__(self, events: list[StreamEvent]) -> None:
        self.events = events

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        for event in self.events:
            yield event

    async def close(self) -> None:
        return None


def _websocket(socket: FakeSocket) -> WebSocket:
    return cast(WebSocket, socket)


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _numbers(socket: FakeSocket) -> list[int]:
    return [int(text.rsplit(":", 1)[1].rstrip("}")) for text in socket.sent]


async def test_given_replayed_and_live_events_then_they_go_in_order_and_no_task_idles() -> None:
    streams = InMemoryStreams()
    first = await streams.publish("user:1", "a", {"n": 1})
    await streams.publish("user:1", "a", {"n": 2})
    socket = FakeSocket()
    subscription = await streams.subscribe(["user:1"], {"user:1": first})
    idle_tasks = len(asyncio.all_tasks())

    forwarder = _Forwarder(_websocket(socket), subscription)
    await _settle()
    for n in (3, 4, 5):
        await streams.publish("user:1", "a", {"n": n})
    await _settle()

    assert _numbers(socket) == [2, 3, 4, 5]
    assert len(asyncio.all_tasks()) == idle_tasks
    forwarder.stop()
    await subscription.close()
    await forwarder.stopped()


async def test_given_the_streams_close_then_the_client_is_told_to_resume() -> None:
    streams = InMemoryStreams()
    socket = FakeSocket()
    _Forwarder(_websocket(socket), await streams.subscribe(["user:1"], {}))

    await streams.publish("user:1", "a", {"n": 1})
    await streams.close()
    await _settle()

    assert (_numbers(socket), socket.closed_with) == ([1], CLOSE_RESUME)


async def test_given_lost_events_then_the_client_is_told_to_reload() -> None:
    subscription = MailboxSubscription()
    socket = FakeSocket()
    _Forwarder(_websocket(socket), subscription)

    subscription.mailbox.put(StreamEnd(ReplayGap("user:1")))
    await _settle()

    assert (socket.sent, socket.closed_with) == (['{"type":"reload"}'], CLOSE_RELOAD)


async def test_given_a_stopped_forwarder_then_later_events_are_not_sent() -> None:
    subscription = MailboxSubscription()
    socket = FakeSocket()
    forwarder = _Forwarder(_websocket(socket), subscription)

    forwarder.stop()
    subscription.mailbox.put(StreamEvent("e-1", '{"n":1}'))
    await subscription.close()
    await forwarder.stopped()
    await _settle()

    assert (socket.sent, socket.closed_with) == ([], None)


async def test_given_an_iterator_that_is_not_a_feed_then_a_task_follows_it() -> None:
    events = [StreamEvent(f"e-{n}", f'{{"n":{n}}}') for n in (1, 2)]
    socket = FakeSocket()
    forwarder = _Forwarder(_websocket(socket), GeneratorSubscription(events))

    await _settle()

    assert (_numbers(socket), socket.closed_with) == ([1, 2], CLOSE_RESUME)
    await forwarder.stopped()
