"""Numbered event streams, one per topic (a user, or all supervisors).

A browser registers by reading a snapshot together with the stream's last event id, then
follows the stream from that id; after a reconnect it asks for what it missed. An event id is
`<epoch>-<seq>`: the epoch changes when the stream's history is lost (process restart), so a
client holding an id from an older epoch is told to reload its snapshot instead of silently
missing events.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


SUPERVISORS_TOPIC = "supervisors"
SUPERVISOR_CALLS_TOPIC = "supervisors:calls"
"""Every change of any call record (`call.updated`), for supervisors who ask for it (no page
of the product does: it would be most of a wallboard's traffic, and the board shows calls
through `queues.updated`)."""
OPT_IN_TOPICS = (SUPERVISOR_CALLS_TOPIC,)
"""Topics followed only by the clients that name them (see `realtime.api.topics_for`)."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: str
    data: str
    """The event as JSON, serialised once for every subscriber: `{"id", "type", ...}`."""


class ReplayGap(Exception):
    """The events after the client's last id are no longer kept: reload the snapshot."""


class StreamsUnavailable(Exception):
    """The streams cannot be reached now (a shared backend is down): try again later."""


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        """The events in order. Iteration raises ReplayGap when events for this subscriber
        were lost (reload the snapshot), and ends when the stream can no longer follow
        (the client reconnects and resumes from its last ids). Both backends give a `Feed`,
        which a websocket follows without a task of its own while it is idle."""
        ...

    async def close(self) -> None: ...


OutgoingEvent = tuple[str, str, Mapping[str, Any]]
"""An event to publish: topic, type, payload."""


class Streams(Protocol):
    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        """The event's id. Called after a commit, so it never raises for an unreachable
        backend: the event is dropped (empty id) and the epoch changes once the backend is
        back, so every client reloads its snapshot from the database."""
        ...

    async def publish_many(self, events: Sequence[OutgoingEvent]) -> list[str]:
        """`publish` for (topic, type, payload) events in this order, in one round trip
        where the backend has them; their ids."""
        ...

    async def last_id(self, topic: str) -> str:
        """The id of the topic's latest event (raises StreamsUnavailable)."""
        ...

    async def subscribe(self, topics: list[str], last_ids: Mapping[str, str]) -> Subscription:
        """Everything after `last_ids[topic]` (raises ReplayGap if lost), then live events
        (raises StreamsUnavailable)."""
        ...

    async def close(self) -> None: ...


ENVELOPE_KEYS = frozenset({"id", "topic", "type"})


class RawJson(str):
    """A payload value that is JSON text already (a pydantic model's `model_dump_json()`):
    `encode_event` puts it in as it is instead of encoding it again."""

    __slots__ = ()


def encode_event(event_id: str, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
    clash = ENVELOPE_KEYS.intersection(payload)
    if clash:
        # A payload "id" would replace the event id and break the client's resume position.
        raise ValueError(f"{event_type} payload uses envelope keys {sorted(clash)}")
    body = {"id": event_id, "topic": topic, "type": event_type}
    raw: list[str] = []
    for key, value in payload.items():
        if isinstance(value, RawJson):
            raw.append(f",{json.dumps(key)}:{value}")
        else:
            body[key] = value
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"{text[:-1]}{''.join(raw)}}}" if raw else text


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    epoch, sep, seq = event_id.rpartition("-")
    if not sep or not seq.isdigit():
        return None
    return epoch, int(seq)


class Mailbox(Generic[T]):
    """A FIFO with one consumer: what a subscription hands its websocket.

    An `asyncio.Queue` costs four deques (about 3 KB) for the whole life of every socket;
    an idle mailbox holds neither a deque nor a future, only empty slots: items get a deque
    while there are some, a consumer a future while it waits in `get`. A consumer with no
    task of its own asks `on_put` to be called back at the next item instead.
    """

    __slots__ = ("_items", "_on_put", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._on_put: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    def put(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._on_put is not None:
            callback, self._on_put = self._on_put, None
            callback()

    def on_put(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` once, at the next `put` (now if items are there already); None
        cancels it."""
        self._on_put = callback
        if callback is not None and self._items:
            self._on_put = None
            callback()

    def get_nowait(self) -> T:
        """The first item (IndexError if there is none)."""
        if not self._items:
            raise IndexError("the mailbox is empty")
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.get_nowait()


class StreamEnd:
    """The last item of a subscription's mailbox: the streams can no longer follow it.
    With `gap`, events for it were lost (the client reloads its snapshot); without, the
    client reconnects and resumes."""

    __slots__ = ("gap",)

    def __init__(self, gap: ReplayGap | None = None) -> None:
        self.gap = gap


class Feed:
    """What `aiter()` of a subscription gives: its events in order, as an async iterator
    (which ends, or raises ReplayGap, as `Subscription` says); or, with no task waiting on
    it, `poll` for what is there now and `when_ready` for a call at the next event."""

    __slots__ = ("_end", "_mailbox")

    def __init__(self, mailbox: Mailbox[StreamEvent | StreamEnd]) -> None:
        self._mailbox = mailbox
        self._end: StreamEnd | None = None

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._end is None:
            item = await self._mailbox.get()
            if not isinstance(item, StreamEnd):
                return item
            self._end = item
        if self._end.gap is not None:
            raise self._end.gap
        raise StopAsyncIteration

    @property
    def ended(self) -> bool:
        """Whether the end was reached (`poll` gives None from then on, or raises the gap)."""
        return self._end is not None

    def poll(self) -> StreamEvent | None:
        """The next event if it is there now, else None; ReplayGap when events were lost."""
        if self._end is None and self._mailbox:
            item = self._mailbox.get_nowait()
            if not isinstance(item, StreamEnd):
                return item
            self._end = item
        if self._end is not None and self._end.gap is not None:
            raise self._end.gap
        return None

    def when_ready(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` once, when `poll` has an event or the end to give (now if it has
        already); None cancels it."""
        if callback is not None and self._end is not None:
            callback()
        else:
            self._mailbox.on_put(callback)


@dataclass(slots=True)
class _Topic:
    seq: int = 0
    history: deque[StreamEvent] = field(default_factory=deque)
    subscribers: set[Mailbox[StreamEvent | StreamEnd]] = field(default_factory=set)


class _MemorySubscription:
    __slots__ = ("_mailbox", "_owner", "_topics")

    def __init__(self, owner: InMemoryStreams, topics: list[str], backlog: list[StreamEvent]):
        self._owner = owner
        self._topics = topics
        self._mailbox: Mailbox[StreamEvent | StreamEnd] = Mailbox()
        for event in backlog:
            self._mailbox.put(event)
        for topic in topics:
            owner._topic(topic).subscribers.add(self._mailbox)

    def __aiter__(self) -> Feed:
        return Feed(self._mailbox)

    async def close(self) -> None:
        for topic in self._topics:
            self._owner._topic(topic).subscribers.discard(self._mailbox)
        self._mailbox.put(StreamEnd())


class InMemoryStreams:
    """The embedded default: streams live in this process, the last N events per topic kept."""

    def __init__(self, replay_size: int = 1000) -> None:
        self._replay_size = replay_size
        self._epoch = secrets.token_hex(4)
        self._topics: dict[str, _Topic] = {}

    def _topic(self, topic: str) -> _Topic:
        found = self._topics.get(topic)
        if found is None:
            found = self._topics[topic] = _Topic(history=deque(maxlen=self._replay_size))
        return found

    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        state = self._topic(topic)
        state.seq += 1
        event_id = f"{self._epoch}-{state.seq}"
        event = StreamEvent(event_id, encode_event(event_id, topic, event_type, payload))
        state.history.append(event)
        for mailbox in state.subscribers:
            mailbox.put(event)
        return event_id

    async def publish_many(self, events: Sequence[OutgoingEvent]) -> list[str]:
        return [await self.publish(topic, kind, payload) for topic, kind, payload in events]

    async def last_id(self, topic: str) -> str:
        return f"{self._epoch}-{self._topic(topic).seq}"

    async def subscribe(self, topics: list[str], last_ids: Mapping[str, str]) -> Subscription:
        backlog: list[StreamEvent] = []
        for topic in topics:
            if topic in last_ids:
                backlog.extend(self._missed(topic, last_ids[topic]))
        return _MemorySubscription(self, topics, backlog)

    def _missed(self, topic: str, last_id: str) -> list[StreamEvent]:
        parsed = parse_event_id(last_id)
        state = self._topic(topic)
        if parsed is None or parsed[0] != self._epoch or parsed[1] > state.seq:
            raise ReplayGap(topic)
        seen = parsed[1]
        if seen == state.seq:
            return []
        oldest_kept = state.seq - len(state.history) + 1
        if seen + 1 < oldest_kept:
            raise ReplayGap(topic)
        return list(state.history)[seen + 1 - oldest_kept :]

    async def close(self) -> None:
        for state in self._topics.values():
            for mailbox in state.subscribers:
                mailbox.put(StreamEnd())
