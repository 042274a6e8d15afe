"""Redis restarted mid-run (issue 7): pops resume within 5 s and call records are complete.

A private `redis-server` carries the scale-out pieces: the adapter's PBX lease (`make_lease`,
its writes fenced by it), the event streams the adapter publishes to, the shared queue views,
and, on another `RedisStreams` (another API process), one follower per operator doing what a
websocket handler does: subscribe after its last ids; on `ReplayGap` reload (take `last_id`
again, as a browser re-reads its snapshot). Simulated queue calls flow through the real
adapter into PostgreSQL; mid-run Redis is killed with SIGKILL and started again on the same
port a second later, empty (like the deployment's Redis, it keeps nothing on disk).

Then: the adapter takes its lease back and resyncs; the ringing pops of calls started after
the restart reach their operators within 5 s of Redis answering again; every call the
simulator made is one closed, truthful record; every follower was told to reload and got
every event published after its last reload, once; the live queue board, through the lease
lost and taken back, counts today's calls as a board seeded afresh from the records does.

A second test keeps Redis away for 8 s while a process keeps publishing (its events are
dropped): the publisher and the follower's reader back off meanwhile, and must still be back
within 5 s of Redis answering again.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from redis.asyncio import Redis

from callcenter.cli_pbx import make_lease
from callcenter.config import Settings
from callcenter.context import AppContext, build_context, build_streams
from callcenter.jobs.runner import InProcessJobs, retry_policy
from callcenter.queues.board import LiveQueues
from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import (
    InMemoryStreams,
    ReplayGap,
    Streams,
    StreamsUnavailable,
    Subscription,
    user_topic,
)
from pbx_adapter.simulator import DEFAULT_QUEUES
from tests.factories import make_user
from tests.faults.harness import TIMING as CHAOS_TIMING
from tests.faults.harness import (
    assert_complete,
    assert_timings,
    assert_truthful,
    board_differences,
    chaos_scale,
    run_with_faults,
)
from tests.faults.redis_server import RedisServer
from workers.tasks import TASKS

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

DOWN_S = 1.0
"""How long Redis stays dead before it is started again."""
LONG_DOWN_S = 8.0
"""A longer outage, long enough for the streams' reconnection backoff to grow."""
RESUME_BOUND_S = 5.0
CALLS_PER_S = 2.0
TIMING = replace(CHAOS_TIMING, scale=0.2)
"""Every call lives at least ~4 s: longer than the adapter is blind (Redis down, the lease
taken back, the AMI link up again, ≈ 2 s), since a call born and gone while nobody holds
the PBX is invisible afterwards (AMI has no history)."""
RINGING = "call.ringing"


@pytest.fixture
async def scaled_out(pg_url: str, private_redis: RedisServer) -> AsyncIterator[AppContext]:
    """An adapter process's context on PostgreSQL and the private Redis. Jobs run in this
    process (no Celery worker here) and no wrong-number rule closes calls, so the board's
    counts do not wait for its periodic re-read of outcomes."""
    settings = Settings(
        database_url=pg_url,
        redis_url=private_redis.url,
        wrong_number_rules=[],
        allowed_origins=["http://testserver"],
        _env_file=None,  # type: ignore[call-arg]
    )
    ctx = build_context(settings, jobs=InProcessJobs(TASKS, retry_policy(settings)))
    yield ctx
    async with asyncio.timeout(30):
        await ctx.close()


@dataclass(frozen=True, slots=True)
class Published:
    at: float
    topic: str
    type: str
    call_key: str
    id: str
    """Empty when the event was dropped (Redis unreachable)."""


class PublishLog:
    """`inner` (a `Streams`), noting every event published through it and its id."""

    def __init__(self, inner: Streams) -> None:
        self.inner = inner
        self.events: list[Published] = []

    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        event_id = await self.inner.publish(topic, event_type, payload)
        self._note(topic, event_type, payload, event_id)
        return event_id

    async def publish_many(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
        ids = await self.inner.publish_many(events)
        for (topic, event_type, payload), event_id in zip(events, ids, strict=True):
            self._note(topic, event_type, payload, event_id)
        return ids

    def _note(self, topic: str, event_type: str, payload: Mapping[str, Any], event_id: str) -> None:
        call = payload.get("call")
        key = str(call.get("call_key", "")) if isinstance(call, Mapping) else ""
        at = asyncio.get_running_loop().time()
        self.events.append(Published(at, topic, event_type, key, event_id))

    async def last_id(self, topic: str) -> str:
        return await self.inner.last_id(topic)

    async def subscribe(self, topics: list[str], last_ids: Mapping[str, str]) -> Subscription:
        return await self.inner.subscribe(topics, last_ids)

    async def close(self) -> None:
        await self.inner.close()


@dataclass(slots=True)
class Follower:
    """One operator's websocket on an API process, followed as the handler follows it."""

    streams: Streams
    topic: str
    received: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(when, event id, type, call key)"""
    reloads: list[tuple[float, str]] = field(default_factory=list)
    """(when, the position the reload started from)"""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (besides cancelling) to stop: each loop checks it, so a cancellation lost inside
    a client library cannot leave the follower running."""

    async def _position(self) -> str:
        while not self.stopping.is_set():
            try:
                return await self.streams.last_id(self.topic)
            except StreamsUnavailable:
                await asyncio.sleep(0.05)
        raise asyncio.CancelledError

    async def run(self) -> None:
        last = await self._position()
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            try:
                subscription = await self.streams.subscribe([self.topic], {self.topic: last})
            except ReplayGap:
                last = await self._position()
                self.reloads.append((loop.time(), last))
                continue
            except StreamsUnavailable:
                await asyncio.sleep(0.05)
                continue
            self.ready.set()
            try:
                async for event in subscription:
                    data = json.loads(event.data)
                    call = data.get("call") or {}
                    self.received.append(
                        (loop.time(), event.id, data["type"], str(call.get("call_key", "")))
                    )
                    last = event.id
            except ReplayGap:
                last = await self._position()
                self.reloads.append((loop.time(), last))
            finally:
                await subscription.close()

    def owed(self, published: list[Published]) -> list[str]:
        """The ids published on this topic after its last reload (all of them without one)."""
        mine = [e.id for e in published if e.topic == self.topic and e.id]
        if not self.reloads:
            return mine
        epoch, seen = _split(self.reloads[-1][1])
        return [i for i in mine if _split(i)[0] == epoch and _split(i)[1] > seen]

    def missing(self, published: list[Published]) -> set[str]:
        return set(self.owed(published)) - {event_id for _, event_id, _, _ in self.received}


async def _caught_up(followers: list[Follower], published: list[Published]) -> None:
    """Give the followers up to `RESUME_BOUND_S` to receive what they are owed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RESUME_BOUND_S
    owing = [f for f in followers if f.missing(published)]
    while owing and loop.time() < deadline:
        await asyncio.sleep(0.05)
        owing = [f for f in owing if f.missing(published)]


async def _stop(tasks: list[asyncio.Task[None]], *stopping: asyncio.Event) -> None:
    """End the test's own tasks; fail, rather than hang, if one does not end."""
    for event in stopping:
        event.set()
    for task in tasks:
        task.cancel()
    done, pending = await asyncio.wait(tasks, timeout=10)
    assert not pending, f"tasks that would not stop: {pending}"
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


def _split(event_id: str) -> tuple[str, int]:
    epoch, _, seq = event_id.rpartition("-")
    return epoch, int(seq)


async def _operators(ctx: AppContext) -> dict[str, int]:
    """A user for each agent of the simulated queues: extension → user id."""
    extensions = sorted(
        {member.split("/", 1)[1].split("@", 1)[0] for q in DEFAULT_QUEUES for member in q.members}
    )
    users: dict[str, int] = {}
    async with ctx.sessionmaker() as session:
        for extension in extensions:
            user = await make_user(session, login=f"op{extension}", extensions=[extension])
            users[extension] = user.id
        await session.commit()
    return users


def _first_pops(followers: list[Follower], published: list[Published]) -> dict[str, float]:
    """Call key → when an operator first saw it ring: its `call.ringing` event arrived, or the
    operator reloaded (re-read the snapshot, which shows the call) after it was published."""
    seen: dict[str, float] = {}
    for follower in followers:
        for at, _, kind, key in follower.received:
            if kind == RINGING:
                seen[key] = min(seen.get(key, math.inf), at)
        for event in published:
            if event.type == RINGING and event.topic == follower.topic:
                reload = min((at for at, _ in follower.reloads if at > event.at), default=math.inf)
                seen[event.call_key] = min(seen.get(event.call_key, math.inf), reload)
    return {key: at for key, at in seen.items() if at < math.inf}


async def test_given_redis_killed_and_restarted_empty_mid_run_then_pops_resume_and_no_call_is_lost(
    scaled_out: AppContext, private_redis: RedisServer
) -> None:
    ctx = scaled_out
    scale = chaos_scale()
    restarts = 1 if scale.name == "ci" else max(2, scale.link_faults // 10)
    calls = max(30, scale.calls // 2)
    loop = asyncio.get_running_loop()
    users = await _operators(ctx)
    published = PublishLog(ctx.streams)
    ctx.streams = published  # before the adapter and its board take it
    api_process = build_streams(ctx.settings)
    followers = [Follower(api_process, user_topic(uid)) for uid in users.values()]
    following = [asyncio.create_task(f.run()) for f in followers]
    lease_redis = Redis.from_url(private_redis.url)
    outages: list[tuple[float, float]] = []

    async def restart_redis() -> None:
        killed = loop.time()
        await private_redis.kill()
        await asyncio.sleep(DOWN_S)
        await private_redis.start()
        outages.append((killed, loop.time()))

    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*(f.ready.wait() for f in followers))
        result = await run_with_faults(
            ctx,
            calls=calls,
            faults=["redis_restart"] * restarts,
            seed=17,
            calls_per_s=CALLS_PER_S,
            fault_gap_s=(5.0, 7.0),
            timing=TIMING,
            lease=make_lease(ctx.settings, lease_redis, ctx.settings.pbx_name),
            redis_restart=restart_redis,
        )
        await _caught_up(followers, published.events)
        board = ctx.live_queues()
        await board.flush()
        live = await board.snapshot()
        seeded = LiveQueues(ctx.sessionmaker, InMemoryStreams(), ctx.settings)
        fresh = await seeded.snapshot(live.at)
        await seeded.close()
    finally:
        await _stop(following, *(f.stopping for f in followers))
        async with asyncio.timeout(10):
            await api_process.close()
            await lease_redis.aclose()

    # (b) the records: every call once, closed, as the simulator made it.
    figures = result.figures()
    print(figures)
    assert_complete(result)
    assert_truthful(result)
    assert_timings(result)
    assert len(outages) == restarts
    assert result.lease_terms == restarts + 1, "the adapter must take its lease back each time"

    first_pop = _first_pops(followers, published.events)
    dropped = sum(1 for e in published.events if not e.id)
    for n, (killed, back) in enumerate(outages):
        until = outages[n + 1][0] if n + 1 < len(outages) else math.inf
        later = {k for k, t in result.started_at.items() if back <= t < until}
        rang = {k: result.rang_at[k] for k in later if k in result.rang_at}
        popped = {k: first_pop[k] for k in later if k in first_pop}
        by_event = {k: at for k, at in _first_pops(followers, []).items() if k in later}
        pop_s = min(popped.values(), default=math.inf) - back
        rang_s = min(rang.values(), default=math.inf) - back
        latency = sorted(popped[k] - rang[k] for k in popped if k in rang)
        reloaded = [
            min((at for at, _ in f.reloads if killed < at < until), default=math.inf)
            for f in followers
        ]
        print(
            f"restart {n + 1}: Redis down {back - killed:.2f}s; from its return: adapter"
            f" resynced in {result.faults[n].resynced_s:.2f}s, followers told to reload in"
            f" {min(reloaded) - back:.2f}..{max(reloaded) - back:.2f}s, the first call started"
            f" after it rang at {rang_s:.2f}s and popped at {pop_s:.2f}s (as an event:"
            f" {min(by_event.values(), default=math.inf) - back:.2f}s); {len(popped)} of"
            f" {len(rang)} such calls that rang popped, ring→pop"
            f" {latency[len(latency) // 2] if latency else math.nan:.3f}s median,"
            f" {latency[-1] if latency else math.nan:.3f}s max"
        )
        # (a) pops resume within 5 s of Redis answering again.
        assert rang, f"restart {n + 1}: no call started after it rang an agent"
        assert pop_s <= RESUME_BOUND_S, f"restart {n + 1}: first pop {pop_s:.2f}s after"
        # (c) every follower was told to reload: its history was lost.
        assert all(at < until for at in reloaded), f"restart {n + 1}: a follower never reloaded"
    print(
        f"published {len(published.events)} events ({dropped} dropped), ringing pops of"
        f" {len(first_pop)} calls, reloads per follower {[len(f.reloads) for f in followers]}"
    )

    # (c) after its last reload each follower got every event published, each once.
    for follower in followers:
        ids = [event_id for _, event_id, _, _ in follower.received]
        assert len(ids) == len(set(ids)), f"{follower.topic}: an event was delivered twice"
        missing = follower.missing(published.events)
        assert not missing, f"{follower.topic}: never delivered {sorted(missing)[:5]}"
    assert any(f.owed(published.events) for f in followers), "no event after the reloads"

    # The live board, through the lease lost and taken back, counts as the records say.
    differ = board_differences(live, fresh)
    assert not differ, f"live board KPIs (live, from the records) differ: {differ}"
    assert all(not view.waiting for view in live.queues), "nobody waits once every call ended"
    in_call = [agent.interface for view in live.queues for agent in view.agents if agent.call]
    assert not in_call, f"agents shown in a call once every call ended: {in_call}"


async def test_given_redis_away_for_longer_then_publishing_and_following_resume_within_5s_of_it(
    private_redis: RedisServer,
) -> None:
    """Events keep coming (an API process publishing) while Redis stays dead for a while:
    the publisher drops them and backs off, the follower's reader backs off too; neither
    may sleep past the 5 s in which pops must resume once Redis answers again."""
    topic = user_topic(1)
    publisher = PublishLog(RedisStreams(private_redis.url))
    follower = Follower(RedisStreams(private_redis.url), topic)
    loop = asyncio.get_running_loop()

    stopping = asyncio.Event()

    async def publish() -> None:
        n = 0
        while not stopping.is_set():
            await publisher.publish(topic, RINGING, {"call": {"call_key": str(n)}})
            n += 1
            await asyncio.sleep(0.02)

    publishing = asyncio.create_task(publish())
    following = asyncio.create_task(follower.run())
    try:
        async with asyncio.timeout(10):
            await follower.ready.wait()
        await asyncio.sleep(0.5)
        killed = loop.time()
        await private_redis.kill()
        await asyncio.sleep(LONG_DOWN_S)
        await private_redis.start()
        back = loop.time()
        await asyncio.sleep(RESUME_BOUND_S + 1)
        await _stop([publishing], stopping)
        await _caught_up([follower], publisher.events)
    finally:
        await _stop([publishing, following], stopping, follower.stopping)
        async with asyncio.timeout(10):
            await publisher.close()
            await follower.streams.close()

    published = min((e.at for e in publisher.events if e.at > back and e.id), default=math.inf)
    reloaded = min((at for at, _ in follower.reloads if at > killed), default=math.inf)
    received = min((at for at, *_ in follower.received if at > back), default=math.inf)
    dropped = sum(1 for e in publisher.events if not e.id)
    print(
        f"Redis down {back - killed:.2f}s ({dropped} events dropped); from its return: first"
        f" publish {published - back:.2f}s, follower told to reload {reloaded - back:.2f}s,"
        f" first event received {received - back:.2f}s"
    )
    assert dropped, "events published while Redis was dead must be dropped"
    assert received - back <= RESUME_BOUND_S
    ids = [event_id for _, event_id, _, _ in follower.received]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert not follower.missing(publisher.events), "events after the reload never delivered"
