"""One active adapter per PBX: the Redis lease, its fencing token at the database edge, and two
adapter processes on one simulated Asterisk where the holder dies and the standby takes over."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from callcenter.calls.ingest import CallEventSink
from callcenter.calls.models import Call, PbxEvent
from callcenter.calls.state import CallStatus
from callcenter.cli_pbx import make_adapter
from callcenter.context import AppContext, build_context
from pbx_adapter.lease import LeaseFence, Leaseholder, LeaseLost, PbxLease
from pbx_adapter.simulator import AmiSimulator
from tests.conftest import need_service
from tests.helpers_ami import FIXTURES, PBX, recording, translate_all

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/12"
SECRET = "lease-test-secret"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """Redis database 12; this test's keys live under a prefix of its own."""
    need_service("Redis", "127.0.0.1", 6379)
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    value = f"test-lease-{secrets.token_hex(4)}:"
    yield value
    async for key in redis.scan_iter(match=f"{value}*"):
        await redis.delete(key)


def _lease(redis: Redis, prefix: str, ttl_s: float = 1.0, pbx: str = PBX) -> PbxLease:
    return PbxLease(redis, pbx, ttl_s=ttl_s, key_prefix=prefix)


async def test_given_many_contenders_when_they_acquire_at_once_then_exactly_one_holds(
    redis: Redis, prefix: str
) -> None:
    contenders = [_lease(redis, prefix) for _ in range(8)]
    grants = await asyncio.gather(*(lease.acquire() for lease in contenders))
    held = [grant for grant in grants if grant is not None]
    assert len(held) == 1
    assert await contenders[0].is_current(held[0])
    assert await contenders[1].acquire() is None


async def test_given_a_holder_that_stops_renewing_then_a_standby_takes_over_within_the_ttl(
    redis: Redis, prefix: str
) -> None:
    ttl_s = 0.6
    first, second = _lease(redis, prefix, ttl_s), _lease(redis, prefix, ttl_s)
    old = await first.acquire()
    assert old is not None
    loop = asyncio.get_running_loop()
    began = loop.time()
    new = await Leaseholder(second).acquire(asyncio.Event())
    waited = loop.time() - began
    assert new is not None
    assert new.fencing_token == old.fencing_token + 1
    assert waited <= ttl_s + second.retry_interval_s + 0.5
    assert not await first.renew(old), "the old holder must not extend a lease it lost"
    assert not await first.release(old), "nor delete the new holder's lease"
    assert await second.is_current(new)


async def test_given_a_holder_that_renews_then_nobody_else_gets_the_lease(
    redis: Redis, prefix: str
) -> None:
    ttl_s = 0.6
    holder = Leaseholder(_lease(redis, prefix, ttl_s))
    grant = await holder.acquire(asyncio.Event())
    assert grant is not None
    keeping = asyncio.create_task(holder.keep(grant))
    try:
        for _ in range(6):  # three TTLs
            assert await _lease(redis, prefix, ttl_s).acquire() is None
            await asyncio.sleep(ttl_s / 2)
        assert holder.lease.grant == grant
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
    assert await holder.lease.release(grant)
    assert await _lease(redis, prefix, ttl_s).acquire() is not None


async def test_given_the_lease_taken_by_another_when_renewing_then_the_term_ends_at_once(
    redis: Redis, prefix: str
) -> None:
    holder = Leaseholder(_lease(redis, prefix, 0.6))
    grant = await holder.acquire(asyncio.Event())
    assert grant is not None
    await redis.delete(holder.lease.lease_key)  # expired (a long pause) ...
    assert await _lease(redis, prefix, 0.6).acquire() is not None  # ... and taken
    await asyncio.wait_for(holder.keep(grant), 2)
    assert holder.lease.grant is None
    with pytest.raises(LeaseLost):
        await LeaseFence(holder.lease).check()


async def _count(ctx: AppContext, what: type[Call] | type[PbxEvent]) -> int:
    async with ctx.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(what)) or 0)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_stale_holder_when_its_late_batch_arrives_then_the_database_refuses_it(
    ctx: AppContext, redis: Redis, prefix: str
) -> None:
    _, events = translate_all(recording("basic_20calls").frames[:200])
    stale_lease, new_lease = _lease(redis, prefix, 0.3), _lease(redis, prefix, 0.3)
    stale_lease.grant = await stale_lease.acquire()
    stale = CallEventSink(
        ctx.sessionmaker, ctx.ingest_policy(), ctx.streams, fence=LeaseFence(stale_lease)
    )
    await stale(events[:10])
    assert await _count(ctx, PbxEvent) == 10
    # The stale holder pauses past its TTL without noticing; another adapter takes over.
    new_lease.grant = await Leaseholder(new_lease).acquire(asyncio.Event())
    assert new_lease.grant is not None
    assert stale_lease.grant is not None, "the paused holder still believes it holds"

    with pytest.raises(LeaseLost):
        await stale(events[10:])
    assert await _count(ctx, PbxEvent) == 10, "a refused batch leaves nothing behind"

    current = CallEventSink(
        ctx.sessionmaker, ctx.ingest_policy(), ctx.streams, fence=LeaseFence(new_lease)
    )
    await current(events[10:])
    assert await _count(ctx, PbxEvent) == len(events)


async def test_given_two_adapters_when_the_holder_dies_then_the_standby_resyncs_and_completes(
    ctx: AppContext, redis: Redis, prefix: str
) -> None:
    truth = recording("basic_20calls")
    standby_ctx = build_context(ctx.settings)  # another adapter process on the same database
    simulator = AmiSimulator(
        "127.0.0.1", 0, "crm", SECRET, replay=FIXTURES / "basic_20calls.ami", speed=40.0
    )
    await simulator.start()
    leases = [_lease(redis, prefix, 2.0, pbx="default") for _ in range(2)]
    holder, standby = (
        make_adapter(c, simulator.host, simulator.port, "crm", SECRET, lease=lease)
        for c, lease in zip((ctx, standby_ctx), leases, strict=True)
    )
    most_logged_in = 0

    async def watch_logins() -> None:
        nonlocal most_logged_in
        while True:
            most_logged_in = max(most_logged_in, simulator.logged_in)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_logins())
    holder_run = asyncio.create_task(holder.run())
    await holder.client.wait_connected(10)
    standby_run = asyncio.create_task(standby.run())
    try:
        while simulator.replay_position < simulator.replay_total * 0.4:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        assert standby.health()["lease_held"] is False
        holder_run.cancel()  # the holder dies: no release, its lease must expire
        with contextlib.suppress(asyncio.CancelledError):
            await holder_run
        died_at = asyncio.get_running_loop().time()
        applied_by_holder = holder.pipeline.events

        await standby.client.wait_connected(10)
        took_over_s = asyncio.get_running_loop().time() - died_at
        assert took_over_s < 10
        await asyncio.wait_for(simulator.replay_done.wait(), 60)
        await asyncio.sleep(0.2)  # the last frames in flight
        await standby.pipeline.flush()
        health = standby.health()
    finally:
        watcher.cancel()
        await standby.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(standby_run, 10)
        await simulator.stop()
        await standby_ctx.close()

    print(f"standby took over {took_over_s:.2f}s after the holder died")
    assert most_logged_in == 1, "both adapters were connected to the PBX at once"
    assert applied_by_holder > 0
    assert health["lease_held"] is True
    assert health["lease_terms"] == 1
    assert standby.client.health.resyncs >= 1
    async with ctx.sessionmaker() as session:
        records = list(await session.scalars(select(Call)))
    keys = [record.call_key for record in records]
    assert len(keys) == len(set(keys)), "duplicate call records"
    assert set(keys) == {call["linkedid"] for call in truth.calls}
    assert all(record.status is CallStatus.ENDED for record in records)
    assert await redis.get(leases[1].lease_key) is None, "a stopped holder releases its lease"


async def test_given_a_holder_whose_lease_is_taken_then_it_disconnects_and_later_comes_back(
    ctx: AppContext, redis: Redis, prefix: str
) -> None:
    simulator = AmiSimulator("127.0.0.1", 0, "crm", SECRET, rate=20.0, seed=7)
    await simulator.start()
    # A TTL long enough that a renewal slowed by a loaded machine does not end the term.
    lease = _lease(redis, prefix, 3.0, pbx="default")
    adapter = make_adapter(ctx, simulator.host, simulator.port, "crm", SECRET, lease=lease)
    running = asyncio.create_task(adapter.run())
    try:
        await adapter.client.wait_connected(10)
        first_token = adapter.health()["fencing_token"]
        # The lease expired in a pause the holder did not notice, and another adapter took it.
        await redis.delete(lease.lease_key)
        intruder = _lease(redis, prefix, 3.0, pbx="default")
        stolen = await intruder.acquire()
        assert stolen is not None
        async with asyncio.timeout(5):
            while adapter.client.connected or simulator.logged_in:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert adapter.health()["lease_held"] is False
        applied = adapter.pipeline.events

        await intruder.release(stolen)  # the other adapter stops: this one takes over again
        await adapter.client.wait_connected(10)
        await asyncio.sleep(0.5)
        health = adapter.health()
    finally:
        await adapter.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
        await simulator.stop()
    assert health["lease_terms"] == 2
    assert health["fencing_token"] == first_token + 2
    assert adapter.client.health.resyncs == 2
    assert adapter.pipeline.events > applied
