"""A batch writes its calls with as few statements as the database allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select

from callcenter.calls.ingest import CallEventSink
from callcenter.calls.models import Call
from callcenter.calls.service import _STATE_COLUMNS, _write
from callcenter.calls.state import CallState, CallStatus
from callcenter.context import AppContext
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
)
from callcenter.realtime.streams import InMemoryStreams
from tests.factories import make_user
from tests.integration.test_card_prefetch import statements

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _start(key: str) -> CallStarted:
    return CallStarted(
        call_key=key,
        event_id=f"{key}:start",
        at=T0,
        direction=Direction.INBOUND,
        caller_num="89161234567",
        callee_num="8001",
    )


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_calls_changed_in_different_ways_then_one_update_writes_them_all(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        agent = await make_user(session, extensions=["101"])  # b's answer resolves to a user
        await session.commit()
    sink = CallEventSink(ctx.sessionmaker, ctx.ingest_policy(), InMemoryStreams())
    await sink([_start("a"), _start("b"), _start("c")])
    later = T0 + timedelta(seconds=5)
    changes: list[CallEvent] = [
        CallQueued(call_key="a", event_id="a:queued", at=later, queue="support"),
        AgentRinging(call_key="b", event_id="b:ring", at=later, agent="SIP/101"),
        CallAnswered(call_key="b", event_id="b:answer", at=later, agent="SIP/101"),
        CallEnded(call_key="c", event_id="c:end", at=later, reason=EndReason.CALLER_HANGUP),
    ]

    with statements(ctx) as run:
        await sink(changes)
    await sink.close()

    updates = [sql for sql in run if sql.lstrip().upper().startswith("UPDATE CALLS")]
    assert len(updates) == 1, updates
    async with ctx.sessionmaker() as session:
        calls = {c.call_key: c for c in await session.scalars(select(Call))}
    assert calls["a"].status is CallStatus.QUEUED
    assert calls["a"].queue == "support"
    assert calls["b"].status is CallStatus.ANSWERED
    assert calls["b"].agent == "SIP/101"
    assert calls["b"].agent_user_id == agent.id
    assert calls["c"].status is CallStatus.ENDED
    assert calls["c"].end_reason is EndReason.CALLER_HANGUP
    # What did not change keeps its value.
    assert {c.caller_num for c in calls.values()} == {"89161234567"}
    assert {c.started_at.replace(tzinfo=UTC) for c in calls.values()} == {T0}


def test_given_a_state_when_written_then_it_sets_exactly_the_state_columns() -> None:
    # `_STATE_COLUMNS` lists what `_write` sets: a column added to one but not the other
    # would put changed calls back in separate UPDATEs.
    row = Call(pbx="default", call_key="k")
    _write(row, CallState(pbx="default", call_key="k", started_at=T0))

    written = {a.key for a in inspect(row).attrs if a.history.has_changes()}

    assert written - {"pbx", "call_key"} == set(_STATE_COLUMNS)
