"""A batch writes its calls with as few statements as the database allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import select

from callcenter.calls.ingest import CallEventSink
from callcenter.calls.models import Call
from callcenter.calls.repository import CALL_STATE_COLUMNS, CallRecord
from callcenter.calls.service import write_state
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


def test_given_a_state_when_written_then_it_sets_exactly_the_updated_state_columns() -> None:
    # The UPDATE of a changed call writes `CALL_STATE_COLUMNS`: a field `write_state` sets but
    # the list lacks would never reach the database; one in the list that nothing sets but
    # `write_state` and the agent lookup would be written blindly.
    class Recorder:
        def __init__(self) -> None:
            object.__setattr__(self, "names", set())

        def __setattr__(self, name: str, value: object) -> None:
            self.names.add(name)

    row = Recorder()
    write_state(cast(CallRecord, row), CallState(pbx="default", call_key="k", started_at=T0))

    assert row.names == set(CALL_STATE_COLUMNS) - {"agent_user_id"}


def test_given_the_calls_table_then_ingest_records_have_a_field_for_each_column() -> None:
    assert set(CallRecord.__dataclass_fields__) == {c.name for c in Call.__table__.columns}
