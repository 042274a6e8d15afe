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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


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
        (the client reconnects and resumes from its last ids)."""
        ...

    async def close(self) -> None: ...


class Streams(Protocol):
    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        """The event's id. Called after a commit, so it never raises for an unreachable
        backend: the event is dropped (empty id) and the epoch changes once the backend is
        back, so every client reloads its snapshot from the database."""
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


@dataclass(slots=True)
class _Topic:
    seq: int = 0
    history: deque[StreamEvent] = field(default_factory=deque)
    subscribers: set[asyncio.Queue[StreamEvent | None]] = field(default_factory=set)


class _MemorySubscription:
    def __init__(self, owner: InMemoryStreams, topics: list[str], backlog: list[StreamEvent]):
        self._owner = owner
        self._topics = topics
        self._queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
        for event in backlog:
            self._queue.put_nowait(event)
        for topic in topics:
            owner._topic(topic).subscribers.add(self._queue)

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    async def close(self) -> None:
        for topic in self._topics:
            self._owner._topic(topic).subscribers.discard(self._queue)
        self._queue.put_nowait(None)


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
        for queue in state.subscribers:
            queue.put_nowait(event)
        return event_id

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
            for queue in state.subscribers:
                queue.put_nowait(None)
