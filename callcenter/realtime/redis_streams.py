"""The numbered event streams in Redis: `InMemoryStreams`'s contract, shared by every process.

Adapters, workers and API processes publish; each API process follows every event with one
blocking XREAD on one connection and hands them to its websockets' subscriptions.

Keys, under `prefix` (`callcenter:rt:` by default):

- `epoch`: a hash `{id, run}`, the deployment's epoch and the run id of the Redis server it
  was made on.
- `seq:<topic>`: the topic's last sequence number (never expires; a few bytes a topic).
- `t:<topic>`: the topic's history, a stream whose entry ids are `0-<seq>`, trimmed with
  `MAXLEN ~ replay_size` (Redis drops whole nodes of 100 entries, so at least `replay_size`
  are kept) and gone after `history_ttl_s` without events.
- `all`: every event of every topic in publishing order, and each new epoch, trimmed to
  about `firehose_size`: what every API process follows.

A client sees `<epoch>-<seq>`. One Lua script checks the epoch and appends to both streams,
so an entry always carries the epoch that was current when it was written. The epoch is
replaced with a new random one, and every subscriber of an older one is told to reload:
- when Redis lost it (FLUSHDB, or a restart without persistence);
- when the Redis server is not the run the epoch was made on (any restart or failover: with
  persistence the history may still have been rolled back to the last save, and sequence
  numbers handed out again; a reload costs a snapshot, a silent miss costs a screen pop);
- when a process could not publish (Redis unreachable, a failed script): the event is
  dropped (the call record is committed already and is the truth), later publishes are
  dropped too until the process reaches Redis again, and then its first act is a new epoch.

A resume id of the current epoch older than the kept history raises `ReplayGap`. A process
whose reader fell behind `all`'s trimming (or lost its place in it) ends its subscriptions
without a reload: their clients reconnect and resume from the topic histories.

Needs Redis 7 (`max-deleted-entry-id`); not Redis Cluster (a script touches several keys);
no `allkeys-*` eviction policy (an evicted `seq:` key would number a topic's events again
under the same epoch; `noeviction`, the default, and `volatile-*` are safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from callcenter.realtime.streams import (
    Feed,
    Mailbox,
    OutgoingEvent,
    ReplayGap,
    StreamEnd,
    StreamEvent,
    StreamsUnavailable,
    Subscription,
    encode_event,
    parse_event_id,
)

log = logging.getLogger(__name__)

MAX_BACKOFF_S: Final = 1.0
"""The longest wait between attempts to reach Redis again (the event reader, and a publisher
that dropped events): both are back within about this of Redis answering again, well inside
the 5 s in which pops must resume after a Redis restart, however long Redis was away."""


def retry_wait(delay: float, draw: float) -> float:
    """The wait before the next attempt: `delay` (already capped) less up to half of it
    (`draw` in [0, 1)), so processes do not retry in step; never longer than `delay`."""
    return delay * (1.0 - draw / 2)


_ID_SLOT: Final = '{"id":"\\u0000",'
"""How a stored event starts: `encode_event` with a NUL id, replaced by the real id when the
event is read (the id is known only once the script has numbered it)."""

_CURRENT_EPOCH = """
local function current_epoch(epoch_key, firehose, candidate, firehose_size)
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  local stored = redis.call('HMGET', epoch_key, 'id', 'run')
  if stored[1] and stored[2] == run then
    return stored[1]
  end
  redis.call('HSET', epoch_key, 'id', candidate, 'run', run)
  redis.call('XADD', firehose, 'MAXLEN', '~', firehose_size, '*', 'e', candidate)
  return candidate
end
"""

_PUBLISH = (
    _CURRENT_EPOCH
    + """
-- KEYS: epoch, all, seq:<topic>, t:<topic>
-- ARGV: candidate epoch, firehose size, replay size, history ttl ms, topic, event
local epoch = current_epoch(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local seq = redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '0-' .. seq, 'e', epoch, 'd', ARGV[6])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', epoch, 't', ARGV[5], 's', seq,
  'd', ARGV[6])
return {epoch, seq}
"""
)

_PUBLISH_MANY = (
    _CURRENT_EPOCH
    + """
-- KEYS: epoch, all, then seq:<topic>, t:<topic> per event
-- ARGV: candidate epoch, firehose size, replay size, history ttl ms, then topic, event per event
-- `_PUBLISH` for each event in order, in one call: the epoch, then each event's seq.
local epoch = current_epoch(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local out = {epoch}
for i = 1, (#KEYS - 2) / 2 do
  local seq_key, topic_key = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local topic, event = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local seq = redis.call('INCR', seq_key)
  redis.call('XADD', topic_key, 'MAXLEN', '~', ARGV[3], '0-' .. seq, 'e', epoch, 'd', event)
  redis.call('PEXPIRE', topic_key, ARGV[4])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', epoch, 't', topic, 's', seq,
    'd', event)
  out[#out + 1] = seq
end
return out
"""
)

_POSITIONS = (
    _CURRENT_EPOCH
    + """
-- KEYS: epoch, all, seq:<topic>...; ARGV: candidate epoch, firehose size
-- The epoch, then each topic's last sequence number.
local out = {current_epoch(KEYS[1], KEYS[2], ARGV[1], ARGV[2])}
for i = 3, #KEYS do
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
return out
"""
)

_REPLAY = (
    _CURRENT_EPOCH
    + """
-- KEYS: epoch, all, then seq:<topic>, t:<topic> per topic
-- ARGV: candidate epoch, firehose size, then the resume epoch ('' for none) and seq per topic
-- The epoch, the last id of `all` (everything up to it is in this answer), then per topic
-- its last sequence number and its entries after the resume seq (when of this epoch).
local epoch = current_epoch(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local out = {epoch, newest[1] and newest[1][1] or '0-0'}
for i = 1, (#KEYS - 2) / 2 do
  local last = tonumber(redis.call('GET', KEYS[1 + 2 * i]) or '0')
  local after = tonumber(ARGV[2 + 2 * i])
  local entries = {}
  if ARGV[1 + 2 * i] == epoch and after < last then
    entries = redis.call('XRANGE', KEYS[2 + 2 * i], '(0-' .. after, '+')
  end
  out[#out + 1] = last
  out[#out + 1] = entries
end
return out
"""
)

_ROTATE = """
-- KEYS: epoch, all; ARGV: new epoch, firehose size
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'run', run)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
return ARGV[1]
"""


def _new_epoch() -> str:
    return secrets.token_hex(4)


def _with_id(event_id: str, stored: str) -> str:
    if stored.startswith(_ID_SLOT):
        return f'{{"id":"{event_id}",{stored[len(_ID_SLOT) :]}'
    raise ValueError("a stored event does not start with its id slot")  # encode_event guards


def _stream_id(raw: str) -> tuple[int, int]:
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


def _seq_of(raw: str) -> int:
    return _stream_id(raw)[1]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One entry of `all`: an event of `topic` (or, with no topic, a new epoch)."""

    position: tuple[int, int]
    epoch: str
    topic: str = ""
    seq: int = 0
    stored: str = ""


class _RedisSubscription:
    """One websocket's topics. Entries of `all` may arrive before the backlog is read (they
    are held until then); those at or before the backlog's position in `all` are in it."""

    __slots__ = (
        "_after",
        "_early",
        "_ended",
        "_epoch",
        "_mailbox",
        "_max_pending",
        "_next_seq",
        "_owner",
        "topics",
    )

    def __init__(self, owner: RedisStreams, topics: list[str], max_pending: int) -> None:
        self._owner = owner
        self.topics = topics
        self._max_pending = max_pending
        self._mailbox: Mailbox[StreamEvent | StreamEnd] = Mailbox()
        self._early: list[_Entry] | None = []
        self._epoch = ""
        self._after: tuple[int, int] = (0, 0)
        self._next_seq: dict[str, int] = {}
        self._ended = False

    def start(
        self,
        epoch: str,
        after: tuple[int, int],
        next_seq: dict[str, int],
        backlog: Sequence[StreamEvent],
    ) -> None:
        self._epoch, self._after, self._next_seq = epoch, after, next_seq
        for event in backlog:
            self._mailbox.put(event)
        early, self._early = self._early or [], None
        for entry in early:
            self.offer(entry)

    def offer(self, entry: _Entry) -> None:
        if self._ended:
            return
        if self._early is not None:
            self._early.append(entry)
            return
        if entry.position <= self._after:
            return
        if entry.epoch != self._epoch:
            self.end(reload=True)
            return
        if not entry.topic:
            return
        expected = self._next_seq.get(entry.topic)
        if expected is None:
            return
        if entry.seq != expected:
            # An event of this topic did not reach this process: the history has it.
            self.end(reload=False)
            return
        self._next_seq[entry.topic] = expected + 1
        event_id = f"{entry.epoch}-{entry.seq}"
        self._mailbox.put(StreamEvent(event_id, _with_id(event_id, entry.stored)))
        if len(self._mailbox) > self._max_pending:
            self.end(reload=False)  # a socket this slow resumes from the history instead

    def end(self, *, reload: bool) -> None:
        if not self._ended:
            self._ended = True
            self._mailbox.put(StreamEnd(ReplayGap(",".join(self.topics)) if reload else None))

    @property
    def epoch(self) -> str:
        return self._epoch

    def __aiter__(self) -> Feed:
        return Feed(self._mailbox)

    async def close(self) -> None:
        self._owner._forget(self)
        self.end(reload=False)


class RedisStreams:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        replay_size: int = 1000,
        prefix: str = "callcenter:rt:",
        firehose_size: int = 10_000,
        history_ttl_s: float = 86_400.0,
        command_timeout_s: float = 2.0,
        block_s: float = 5.0,
        read_count: int = 500,
        max_pending: int = 10_000,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self._prefix = prefix
        self._epoch_key = f"{prefix}epoch"
        self._all_key = f"{prefix}all"
        self._replay_size = replay_size
        self._firehose_size = firehose_size
        self._history_ttl_ms = int(history_ttl_s * 1000)
        self._command_timeout_s = command_timeout_s
        self._block_ms = int(block_s * 1000)
        self._read_count = read_count
        self._max_pending = max_pending
        self._max_backoff_s = max_backoff_s
        self.commands_name = f"{prefix}commands"
        self.reader_name = f"{prefix}reader"
        """The connections' names in CLIENT LIST."""
        # One retry on a broken connection (a restarted server, a killed client): a command
        # sent on a dead socket never ran. A duplicate after a lost reply is harmless.
        self._redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=command_timeout_s,
            socket_connect_timeout=command_timeout_s,
            retry=Retry(NoBackoff(), 1),
            client_name=self.commands_name,
        )
        self._reader = Redis.from_url(
            url,
            decode_responses=True,
            single_connection_client=True,
            socket_timeout=block_s + command_timeout_s,
            socket_connect_timeout=command_timeout_s,
            retry=Retry(NoBackoff(), 0),
            client_name=self.reader_name,
        )
        self._publish = self._redis.register_script(_PUBLISH)
        self._publish_many = self._redis.register_script(_PUBLISH_MANY)
        self._positions = self._redis.register_script(_POSITIONS)
        self._replay = self._redis.register_script(_REPLAY)
        self._rotate = self._redis.register_script(_ROTATE)
        self._subscriptions: dict[str, list[_RedisSubscription]] = {}
        """The subscriptions of each topic: mostly one (a user's own topic), so a list, not a set
        (a 200-byte set for each websocket)."""
        self._reader_task: asyncio.Task[None] | None = None
        self._reader_ready = asyncio.Event()
        self._recovery: asyncio.Task[None] | None = None
        self._dropped = 0
        self._closed = False
        self.epoch = ""
        """The epoch this process last saw (for logs and tests)."""

    # --- publishing -----------------------------------------------------------------------

    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        stored = encode_event("\0", topic, event_type, payload)
        if self._recovery is not None:
            self._dropped += 1
            return ""
        try:
            epoch, seq = await self._publish(
                keys=[self._epoch_key, self._all_key, self._seq_key(topic), self._topic_key(topic)],
                args=[
                    _new_epoch(),
                    self._firehose_size,
                    self._replay_size,
                    self._history_ttl_ms,
                    topic,
                    stored,
                ],
            )
        except (RedisError, OSError) as exc:
            log.warning("event %s for %s dropped: Redis refused it (%s)", event_type, topic, exc)
            self._dropped += 1
            if self._recovery is None:
                self._recovery = asyncio.create_task(self._recover(), name="redis-streams-recovery")
            return ""
        self.epoch = str(epoch)
        return f"{epoch}-{seq}"

    async def publish_many(self, events: Sequence[OutgoingEvent]) -> list[str]:
        """`publish` for each event, in order, by one script call (one round trip, one
        command to encode and parse whatever the number of events)."""
        if not events:
            return []
        if self._recovery is not None:
            self._dropped += len(events)
            return [""] * len(events)
        keys = [self._epoch_key, self._all_key]
        args: list[str | int] = [
            _new_epoch(),
            self._firehose_size,
            self._replay_size,
            self._history_ttl_ms,
        ]
        for topic, event_type, payload in events:
            keys += (self._seq_key(topic), self._topic_key(topic))
            args += (topic, encode_event("\0", topic, event_type, payload))
        try:
            epoch, *seqs = await self._publish_many(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.warning("%d events dropped: Redis refused them (%s)", len(events), exc)
            self._dropped += len(events)
            if self._recovery is None:
                self._recovery = asyncio.create_task(self._recover(), name="redis-streams-recovery")
            return [""] * len(events)
        self.epoch = str(epoch)
        return [f"{epoch}-{seq}" for seq in seqs]

    async def _recover(self) -> None:
        """Events were dropped: once Redis answers, start a new epoch (every client reloads)."""
        delay = 0.05
        while not self._closed:
            try:
                self.epoch = str(
                    await self._rotate(
                        keys=[self._epoch_key, self._all_key],
                        args=[_new_epoch(), self._firehose_size],
                    )
                )
            except (RedisError, OSError):
                await asyncio.sleep(retry_wait(delay, random.random()))  # noqa: S311
                delay = min(delay * 2, self._max_backoff_s)
                continue
            log.warning(
                "Redis is back; %d events were dropped meanwhile: new epoch %s, clients reload",
                self._dropped,
                self.epoch,
            )
            self._dropped = 0
            self._recovery = None
            return

    # --- positions and replay -------------------------------------------------------------

    async def last_id(self, topic: str) -> str:
        try:
            epoch, last = await self._positions(
                keys=[self._epoch_key, self._all_key, self._seq_key(topic)],
                args=[_new_epoch(), self._firehose_size],
            )
        except (RedisError, OSError) as exc:
            raise StreamsUnavailable(str(exc)) from exc
        self.epoch = str(epoch)
        return f"{epoch}-{last}"

    async def subscribe(self, topics: list[str], last_ids: Mapping[str, str]) -> Subscription:
        subscription = _RedisSubscription(self, topics, self._max_pending)
        # Registered before the backlog is read, so nothing published in between is missed.
        for topic in topics:
            followers = self._subscriptions.setdefault(topic, [])
            if subscription not in followers:
                followers.append(subscription)
        try:
            await self._start_reader()
            epoch, after, next_seq, backlog = await self._read_backlog(topics, last_ids)
        except BaseException:
            self._forget(subscription)
            raise
        subscription.start(epoch, after, next_seq, backlog)
        return subscription

    async def _read_backlog(
        self, topics: list[str], last_ids: Mapping[str, str]
    ) -> tuple[str, tuple[int, int], dict[str, int], list[StreamEvent]]:
        resume = {t: parse_event_id(last_ids[t]) for t in topics if t in last_ids}
        keys = [self._epoch_key, self._all_key]
        args: list[Any] = [_new_epoch(), self._firehose_size]
        for topic in topics:
            keys += [self._seq_key(topic), self._topic_key(topic)]
            wanted = resume.get(topic)
            args += [wanted[0], wanted[1]] if wanted else ["", -1]
        try:
            answer = await self._replay(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StreamsUnavailable(str(exc)) from exc
        epoch, newest = str(answer[0]), _stream_id(answer[1])
        self.epoch = epoch
        next_seq: dict[str, int] = {}
        backlog: list[StreamEvent] = []
        for i, topic in enumerate(topics):
            last, entries = int(answer[2 + 2 * i]), answer[3 + 2 * i]
            next_seq[topic] = last + 1
            if topic not in last_ids:
                continue
            wanted = resume[topic]
            if wanted is None or wanted[0] != epoch or wanted[1] > last:
                raise ReplayGap(topic)
            if wanted[1] == last:
                continue
            if not entries or _seq_of(entries[0][0]) != wanted[1] + 1:
                raise ReplayGap(topic)  # trimmed, or expired
            for raw_id, fields in entries:
                values = dict(zip(fields[::2], fields[1::2], strict=True))
                event_id = f"{values['e']}-{_seq_of(raw_id)}"
                backlog.append(StreamEvent(event_id, _with_id(event_id, values["d"])))
        return epoch, newest, next_seq, backlog

    # --- following `all` ------------------------------------------------------------------

    async def _start_reader(self) -> None:
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self._read_forever(), name="redis-streams")
        try:
            await asyncio.wait_for(self._reader_ready.wait(), self._command_timeout_s)
        except TimeoutError as exc:
            raise StreamsUnavailable("the event reader cannot reach Redis") from exc

    async def _read_forever(self) -> None:
        position: tuple[int, int] | None = None
        check = True
        delay = 0.05
        while not self._closed:
            try:
                if check:
                    position = await self._resync(position)
                    self._reader_ready.set()
                    check = False
                assert position is not None
                answer: Any = await self._reader.xread(
                    {self._all_key: f"{position[0]}-{position[1]}"},
                    count=self._read_count,
                    block=self._block_ms,
                )
            except (RedisError, OSError) as exc:
                log.warning("event reader lost Redis (%s); reconnecting", exc)
                check = True
                await asyncio.sleep(retry_wait(delay, random.random()))  # noqa: S311
                delay = min(delay * 2, self._max_backoff_s)
                continue
            delay = 0.05
            entries = answer[0][1] if answer else []
            for raw_id, fields in entries:
                entry = _Entry(
                    position=_stream_id(raw_id),
                    epoch=fields["e"],
                    topic=fields.get("t", ""),
                    seq=int(fields.get("s", 0)),
                    stored=fields.get("d", ""),
                )
                self._dispatch(entry)
                position = entry.position
            # A full batch means this process is behind: make sure `all` was not trimmed
            # past it before reading on.
            check = len(entries) >= self._read_count

    async def _resync(self, position: tuple[int, int] | None) -> tuple[int, int]:
        """Where to read `all` from, after a (re)connect or a full batch: subscribers of an
        older epoch reload; if entries after `position` are gone, every subscriber resumes."""
        await self._reader.ping()
        epoch, *_ = await self._positions(
            keys=[self._epoch_key, self._all_key], args=[_new_epoch(), self._firehose_size]
        )
        self.epoch = str(epoch)
        try:
            info = await self._reader.xinfo_stream(self._all_key)
        except ResponseError:  # no such key: nothing was ever published
            newest, deleted = (0, 0), (0, 0)
        else:
            newest = _stream_id(str(info["last-generated-id"]))
            deleted = _stream_id(str(info.get("max-deleted-entry-id", "0-0")))
        for subscription in self._all_subscriptions():
            if subscription.epoch and subscription.epoch != self.epoch:
                subscription.end(reload=True)
        if position is None:
            return newest
        if deleted > position or newest < position:
            log.warning("event reader fell behind the kept events; its subscribers resume")
            for subscription in self._all_subscriptions():
                subscription.end(reload=False)
            return newest
        return position

    def _dispatch(self, entry: _Entry) -> None:
        targets: Collection[_RedisSubscription]
        if entry.topic:
            targets = self._subscriptions.get(entry.topic, ())
        else:
            targets = self._all_subscriptions()
        for subscription in list(targets):
            subscription.offer(entry)

    def _all_subscriptions(self) -> set[_RedisSubscription]:
        return set().union(*self._subscriptions.values())

    def _forget(self, subscription: _RedisSubscription) -> None:
        for topic in subscription.topics:
            followers = self._subscriptions.get(topic)
            if followers is not None and subscription in followers:
                followers.remove(subscription)
                if not followers:
                    del self._subscriptions[topic]

    # --- keys and life ------------------------------------------------------------------------

    def _seq_key(self, topic: str) -> str:
        return f"{self._prefix}seq:{topic}"

    def _topic_key(self, topic: str) -> str:
        return f"{self._prefix}t:{topic}"

    async def close(self) -> None:
        self._closed = True
        for subscription in self._all_subscriptions():
            subscription.end(reload=False)
        for task in (self._reader_task, self._recovery):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._reader.aclose()
        await self._redis.aclose()
