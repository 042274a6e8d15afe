"""The recorded Asterisk streams, replayed into the database, give one true record per call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from callcenter.calls.models import Call, PbxEvent
from callcenter.calls.state import CallStatus
from callcenter.context import AppContext
from pbx_adapter.replay import replay_bytes
from tests.helpers_ami import FIXTURES, OUTCOME_REASON, STREAMS, recording


async def _records(ctx: AppContext) -> dict[str, Call]:
    async with ctx.sessionmaker() as session:
        return {c.call_key: c for c in await session.scalars(select(Call))}


def _check_against_truth(name: str, records: dict[str, Call]) -> None:
    truth = recording(name)
    agent_names = truth.agent_names
    assert set(records) == {c["linkedid"] for c in truth.calls}
    for expected in truth.calls:
        call = records[expected["linkedid"]]
        where = f"{name} {expected['linkedid']} ({expected['caller_format']})"
        assert call.caller_num == expected["caller_num_raw"], where
        assert call.caller_e164 == expected["caller_e164"], where
        assert call.status is CallStatus.ENDED, where
        assert call.end_reason is OUTCOME_REASON[expected["outcome"]], where
        assert call.queue == expected["queue"], where
        answering = agent_names.get(call.agent or "", call.agent_name) if call.agent else None
        assert answering == expected["agent"], where
        if expected["wait_s"] is not None:
            assert call.wait_seconds is not None, where
            assert abs(call.wait_seconds - expected["wait_s"]) <= 1, where
        if expected["talk_s"] is not None:
            assert call.talk_seconds is not None, where
            assert abs(call.talk_seconds - expected["talk_s"]) <= 1, where
        if expected["recording"]:
            assert call.recording == expected["recording"], where


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_recorded_stream_when_replayed_twice_then_records_match_truth_and_dont_change(
    ctx: AppContext, name: str
) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    sink = ctx.call_event_sink()
    stats = await replay_bytes(data, sink, pbx="lab")
    await ctx.jobs.drain()  # the ended calls' jobs (analysis, wrong-number rules) settle first
    assert stats.rejected == 0
    assert stats.events > 0
    first = await _records(ctx)
    _check_against_truth(name, first)
    snapshot = {k: (c.status, c.end_reason, c.wait_seconds, c.talk_seconds, c.updated_at)
                for k, c in first.items()}

    await replay_bytes(data, sink, pbx="lab")
    await ctx.jobs.drain()
    again = await _records(ctx)
    assert {k: (c.status, c.end_reason, c.wait_seconds, c.talk_seconds, c.updated_at)
            for k, c in again.items()} == snapshot
    async with ctx.sessionmaker() as session:
        logged = await session.scalar(select(func.count()).select_from(PbxEvent))
    assert logged == stats.events


async def test_given_stream_when_replayed_then_call_times_come_from_the_pbx_clock(
    ctx: AppContext,
) -> None:
    data = (FIXTURES / "basic_20calls.ami").read_bytes()
    await replay_bytes(data, ctx.call_event_sink(), pbx="lab")
    truth = recording("basic_20calls").meta
    records = await _records(ctx)
    started = min(c.started_at for c in records.values())
    assert abs(started.timestamp() - truth["started"]) < timedelta(minutes=1).total_seconds()
