"""A queue call's card is made while the caller waits, so its ring costs no card query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.auth.models import Role
from callcenter.calls.ingest import CallEventSink
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
from callcenter.context import AppContext
from callcenter.events import AgentRinging, CallQueued, CallStarted, Direction
from callcenter.realtime.streams import InMemoryStreams, user_topic
from tests.factories import make_user

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@contextmanager
def statements(ctx: AppContext, engine: AsyncEngine | None = None) -> Iterator[list[str]]:
    """The SQL run on the context's engine (or on `engine`) meanwhile."""
    watched = (engine or ctx.engine).sync_engine
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(watched, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(watched, "before_cursor_execute", note)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_caller_waiting_in_a_queue_then_the_ring_pops_a_card_made_before_it(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, role=Role.OPERATOR, login="anna", extensions=["101"])
        await clients.create_client(
            session,
            ctx.phones,
            ClientIn(name="Мария Сидорова", phones=[PhoneIn(raw="+79161234567")]),
        )
        await session.commit()
    streams = InMemoryStreams()
    sink = CallEventSink(ctx.sessionmaker, ctx.ingest_policy(), streams)
    subscription = await streams.subscribe([user_topic(anna.id)], {})

    await sink(
        [
            CallStarted(
                call_key="q1",
                event_id="q1:start",
                at=T0,
                direction=Direction.INBOUND,
                caller_num="89161234567",
                callee_num="8001",
            ),
            CallQueued(call_key="q1", event_id="q1:queued", at=T0, queue="support", position=1),
        ]
    )
    await sink.close()  # the card prefetch started after the first batch
    with statements(ctx) as run:
        await sink(
            [
                AgentRinging(
                    call_key="q1",
                    event_id="q1:ring",
                    at=T0 + timedelta(seconds=20),
                    agent="Local/101@agents",
                    queue="support",
                ),
            ]
        )

    card_tables = ("phones", "tasks", "organizations")
    assert run, "the ring batch was applied"
    assert not [sql for sql in run if any(f"FROM {t}" in sql for t in card_tables)]
    async for pop in subscription:
        assert pop.data.count('"type":"call.ringing"') == 1
        assert "Мария Сидорова" in pop.data
        break
    await subscription.close()
