"""Screen pops ahead of the call record (`callcenter.calls.early_pops`): the operator's card
goes out while the batch that records the ring still waits for the database, carries the
id the call is then stored under, and is published once."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from callcenter.auth.models import Role
from callcenter.calls import service
from callcenter.calls.early_pops import EarlyPops
from callcenter.calls.ingest import CallEventSink
from callcenter.calls.models import Call
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallEnded,
    CallEvent,
    CallStarted,
    Direction,
    EndReason,
    Party,
    StopRingReason,
)
from callcenter.realtime.streams import Subscription, user_topic
from tests.factories import make_user
from tests.integration.test_card_prefetch import statements
from tests.redis_streams_support import STREAMS_REDIS_URL, delete_keys, need_streams_redis

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
ANNA = "Local/101@agents"


@pytest.fixture(params=["adapter loop", "own thread"])
async def context(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[AppContext]:
    """PostgreSQL; the lane on the adapter's loop (in-process streams) or on its own
    thread (Redis streams)."""
    redis_url = ""
    prefix = f"test{secrets.token_hex(4)}:"
    if request.param == "own thread":
        need_streams_redis()
        redis_url = STREAMS_REDIS_URL
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        early_pops=True,
        jobs_key_prefix=prefix,
        allowed_origins=["http://testserver"],
        _env_file=None,  # type: ignore[call-arg]
    )
    ctx = build_context(settings)
    yield ctx
    await ctx.close()
    if redis_url:
        await delete_keys(prefix)


def _started(key: str, caller: str = "89161234567") -> CallStarted:
    return CallStarted(
        call_key=key,
        event_id=f"{key}:start",
        at=T0,
        direction=Direction.INBOUND,
        caller_num=caller,
        callee_num="8001",
    )


def _ring(key: str, seconds: float = 1) -> AgentRinging:
    return AgentRinging(
        call_key=key, event_id=f"{key}:ring", at=T0 + timedelta(seconds=seconds), agent=ANNA
    )


def _no_answer(key: str) -> AgentStoppedRinging:
    return AgentStoppedRinging(
        call_key=key,
        event_id=f"{key}:noanswer",
        at=T0 + timedelta(seconds=2),
        agent=ANNA,
        reason=StopRingReason.NO_ANSWER,
    )


def _ended(key: str) -> CallEnded:
    return CallEnded(
        call_key=key,
        event_id=f"{key}:end",
        at=T0 + timedelta(seconds=3),
        reason=EndReason.CALLER_HANGUP,
        ended_by=Party.CALLER,
    )


async def _setup(ctx: AppContext) -> tuple[int, CallEventSink, Subscription]:
    """Anna at extension 101, a client with a known number, a sink whose agent directory
    was read (the first batch reads it), and Anna's stream."""
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, role=Role.OPERATOR, login="anna", extensions=["101"])
        await clients.create_client(
            session,
            ctx.phones,
            ClientIn(name="Мария Сидорова", phones=[PhoneIn(raw="+79161234567")]),
        )
        await session.commit()
    sink = ctx.call_event_sink()
    assert sink.early is not None
    subscription = await ctx.streams.subscribe([user_topic(anna.id)], {})
    await _apply(sink, [_started("warm-up"), _ring("warm-up"), _ended("warm-up")])
    seen = [await _next(subscription) for _ in range(2)]
    assert [e["type"] for e in seen] == ["call.ringing", "call.withdrawn"]
    return anna.id, sink, subscription


async def _apply(sink: CallEventSink, events: Sequence[CallEvent]) -> None:
    """What the adapter does with live events: show them to the early pops, then batch."""
    assert sink.early is not None
    sink.early.observe(events)
    await sink(events)


async def _next(subscription: Subscription, within_s: float = 10.0) -> dict[str, Any]:
    """The subscription's next event, as the browser reads it."""
    event = await asyncio.wait_for(anext(aiter(subscription)), within_s)
    found: dict[str, Any] = json.loads(event.data)
    return found


def _rings(ctx: AppContext, result: str) -> float | None:
    """The `callcenter_early_pops_total` count of `result` on the context's /metrics."""
    return ctx.metrics.get_sample_value("callcenter_early_pops_total", {"result": result})


async def _hold_event_log(ctx: AppContext) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Lock the PBX event log from another connection until the returned event is set:
    every sink batch waits on its first statement meanwhile."""
    locked = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("LOCK TABLE pbx_events IN EXCLUSIVE MODE"))
            locked.set()
            await release.wait()
            await conn.rollback()

    task = asyncio.create_task(hold())
    await locked.wait()
    return release, task


async def test_given_a_slow_database_write_then_the_ring_pops_before_its_batch_commits(
    context: AppContext,
) -> None:
    anna, sink, subscription = await _setup(context)
    release, holder = await _hold_event_log(context)
    events = [_started("c1"), _ring("c1")]
    assert sink.early is not None
    sink.early.observe(events)
    batch = asyncio.create_task(sink(events))

    pop = await _next(subscription)

    assert not batch.done()  # the batch still waits for the event log
    assert pop["type"] == "call.ringing"
    assert pop["card"]["known"] is True
    assert pop["call"]["client_id"] is not None
    popped_id = pop["call"]["id"]
    assert context.ingest_engine is not None
    with statements(context, context.ingest_engine) as run:
        release.set()
        await holder
        await batch
    # The batch took the caller's owners the pop had just read instead of reading them again.
    assert not [sql for sql in run if "FROM phones" in sql]
    assert [sql for sql in run if "INSERT INTO calls" in sql]
    async with context.sessionmaker() as session:
        stored = (await session.execute(select(Call).where(Call.call_key == "c1"))).scalar_one()
    assert stored.id == popped_id
    assert stored.client_id == pop["call"]["client_id"]
    # The batch published no second pop; the next event of the call comes after it.
    await _apply(sink, [_no_answer("c1"), _ended("c1")])
    after = await _next(subscription)
    assert (after["type"], after["call"]["id"]) == ("call.withdrawn", popped_id)
    # The warm-up's ring went the usual way: no agent directory read, no ids reserved yet.
    assert _rings(context, "popped") == 1
    await sink.close()
    await subscription.close()
    assert anna


async def test_given_a_ring_and_its_end_in_one_batch_then_the_pop_comes_first_and_once(
    context: AppContext,
) -> None:
    _, sink, subscription = await _setup(context)

    await _apply(sink, [_started("c2"), _ring("c2"), _no_answer("c2"), _ended("c2")])

    seen = [await _next(subscription) for _ in range(2)]
    assert [e["type"] for e in seen] == ["call.ringing", "call.withdrawn"]
    assert seen[0]["call"]["id"] == seen[1]["call"]["id"]
    with pytest.raises(TimeoutError):
        await _next(subscription, within_s=0.3)
    await sink.close()
    await subscription.close()


async def test_given_auto_created_clients_then_an_unknown_caller_is_popped_by_the_batch(
    context: AppContext,
) -> None:
    context.settings = context.settings.model_copy(update={"auto_create_clients": True})
    _, sink, subscription = await _setup(context)

    await _apply(sink, [_started("c3", caller="+74951112233"), _ring("c3")])

    pop = await _next(subscription)
    assert pop["type"] == "call.ringing"
    assert pop["card"]["known"] is True  # the client made for the caller
    assert sink.early is not None
    assert _rings(context, "left_to_batch") == 1
    with pytest.raises(TimeoutError):
        await _next(subscription, within_s=0.3)
    await sink.close()
    await subscription.close()


async def test_given_a_call_key_stored_before_its_watch_then_the_stored_call_is_kept(
    context: AppContext,
) -> None:
    """A call_key that comes back (Asterisk's linkedids do not; a safety net): the batch
    keeps the stored call, stops the watch, and pops the ring itself with the stored id."""
    _, sink, subscription = await _setup(context)
    await sink([_started("c4")])  # stored without the watch
    assert sink.early is not None
    sink.early.observe([_started("c4").model_copy(update={"event_id": "c4:start-again"})])

    await _apply(sink, [_ring("c4")])

    pops = [await _next(subscription) for _ in range(2)]
    async with context.sessionmaker() as session:
        stored = (await session.execute(select(Call).where(Call.call_key == "c4"))).scalars()
        ids = [call.id for call in stored]
    assert len(ids) == 1
    assert pops[-1]["call"]["id"] == ids[0]
    assert ("default", "c4") in sink._caches.unwatched
    await sink.close()
    await subscription.close()


@pytest.mark.parametrize(
    ("database_url", "early_pops"),
    [("postgres", False), ("sqlite", True), ("sqlite", False)],
    indirect=["database_url"],
)
async def test_given_the_default_or_sqlite_then_rings_pop_only_after_their_commit(
    settings: Settings, early_pops: bool
) -> None:
    ctx = build_context(settings.model_copy(update={"early_pops": early_pops}))
    try:
        assert ctx.call_event_sink().early is None
    finally:
        await ctx.close()


async def test_given_an_early_pop_that_hangs_then_the_batch_pops_the_ring_itself(
    context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sink, subscription = await _setup(context)
    stuck = asyncio.Event()

    async def hang(*_: object) -> tuple[list[bool], dict[tuple[str, str], object]]:
        stuck.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    monkeypatch.setattr(EarlyPops, "_pop", hang)
    monkeypatch.setattr(service, "CLAIM_WAIT_S", 0.2)

    await _apply(sink, [_started("c5"), _ring("c5")])

    pop = await _next(subscription)
    assert stuck.is_set()
    assert pop["type"] == "call.ringing"
    async with context.sessionmaker() as session:
        stored = (await session.execute(select(Call).where(Call.call_key == "c5"))).scalar_one()
    assert pop["call"]["id"] == stored.id
    await sink.close()
    await subscription.close()
