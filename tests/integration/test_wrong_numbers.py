"""Wrong numbers closed by the rules after a call ends, in-process: on the recorded streams,
with the reason stored and audited, undone by one click for good, and never a client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, func, select

from callcenter import kpi
from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.followups import sweep_job, wrong_number_job
from callcenter.calls.models import Call, Outcome
from callcenter.calls.service import ingest
from callcenter.calls.wrong_number import WrongNumberRule
from callcenter.clients.models import Client
from callcenter.config import Settings
from callcenter.context import AppContext
from callcenter.db import make_sessionmaker
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
    Party,
    RecordingStarted,
)
from callcenter.jobs.models import JobEffect
from callcenter.realtime.streams import user_topic
from callcenter.tasks.models import Task
from pbx_adapter.replay import replay_bytes
from pbx_adapter.runner import EventSink
from tests.factories import login_as, make_user
from tests.helpers_ami import FIXTURES, STREAMS, recording

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
AGENT = "Local/101@agents"

# The recordings' JSON gives talk times in whole seconds (queue_log), the records have them
# from AMI timestamps (within ±1 s): thresholds halfway between the whole seconds the
# recordings hold, so the JSON alone tells which side of each threshold a call falls.
SHORT_ANSWER_S = 4.5
CALLER_HANGUP_S = 2.5
KNOWN_MAX_TALK_S = 60.0


@pytest.fixture
def settings(database_url: str, tmp_path: Any) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url="",
        allowed_origins=["http://testserver"],
        login_attempts_per_minute=1000,
        wrong_number_short_answer_s=SHORT_ANSWER_S,
        wrong_number_caller_hangup_s=CALLER_HANGUP_S,
        wrong_number_known_max_talk_s=KNOWN_MAX_TALK_S,
        recordings_dir=tmp_path / "no-recordings",
        jobs_retry_backoff_s=0.01,
        _env_file=None,  # type: ignore[call-arg]
    )


def _with(ctx: AppContext, **changes: Any) -> None:
    """Change settings of a running context (the jobs read them on every run)."""
    ctx.settings = ctx.settings.model_copy(update=changes)


def call_events(
    key: str,
    caller: str,
    *,
    talk_s: float | None,
    ended_by: Party = Party.CALLER,
    agent: str = AGENT,
    at: datetime = T0,
) -> list[CallEvent]:
    """An inbound call through queue `support`: answered by `agent` for `talk_s`, or not."""
    events: list[CallEvent] = [
        CallStarted(
            call_key=key,
            event_id=f"{key}:start",
            at=at,
            direction=Direction.INBOUND,
            caller_num=caller,
            caller_name="",
            callee_num="8001",
        ),
        CallQueued(
            call_key=key,
            event_id=f"{key}:queued",
            at=at + timedelta(seconds=1),
            queue="support",
            position=1,
        ),
        AgentRinging(
            call_key=key,
            event_id=f"{key}:ring",
            at=at + timedelta(seconds=2),
            agent=agent,
            queue="support",
        ),
    ]
    answered = at + timedelta(seconds=4)
    if talk_s is not None:
        events.append(
            CallAnswered(
                call_key=key, event_id=f"{key}:answer", at=answered, agent=agent, queue="support"
            )
        )
    end = answered + timedelta(seconds=talk_s or 0)
    events.append(
        CallEnded(
            call_key=key,
            event_id=f"{key}:end",
            at=end,
            reason=EndReason.ABANDONED,
            ended_by=ended_by,
        )
    )
    return events


async def _call(ctx: AppContext, key: str) -> Call:
    async with ctx.sessionmaker() as session:
        row = (await session.scalars(select(Call).where(Call.call_key == key))).one()
        return row


async def _audit(ctx: AppContext, action: str) -> list[AuditEntry]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(rows)


async def _count(ctx: AppContext, model: type[Any]) -> int:
    async with ctx.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _ended_one_by_one(ctx: AppContext, events: Sequence[CallEvent]) -> None:
    """Apply the events, letting each ended call's jobs finish before the next event (as the
    minutes between real calls do), so earlier wrong numbers are known to later calls."""
    sink = ctx.call_event_sink()
    chunk: list[CallEvent] = []
    for event in events:
        chunk.append(event)
        if isinstance(event, CallEnded):
            await sink(chunk)
            chunk = []
            await ctx.jobs.drain()
    if chunk:
        await sink(chunk)
    await ctx.jobs.drain()


def _in_order(ctx: AppContext) -> EventSink:
    async def sink(events: Sequence[CallEvent]) -> None:
        await _ended_one_by_one(ctx, events)

    return sink


def _expected_closures(name: str, pattern_e164: str) -> dict[str, list[WrongNumberRule]]:
    """Which calls the rules must close, and which rules fire, from the JSON facts alone."""
    closed: dict[str, list[WrongNumberRule]] = {}
    marked: list[tuple[str, str]] = []  # (start, number) of the calls closed so far
    for call in sorted(recording(name).calls, key=lambda c: (c["end"], c["start"])):
        answered = call["outcome"] == "answered"
        talk, e164 = call["talk_s"], call["caller_e164"]
        fired = []
        if answered and talk < SHORT_ANSWER_S:
            fired.append(WrongNumberRule.SHORT_ANSWER)
        if answered and call["ended_by"] == "caller" and talk <= CALLER_HANGUP_S:
            fired.append(WrongNumberRule.CALLER_HUNG_UP)
        earlier = sum(1 for start, number in marked if number == e164 and start < call["start"])
        if e164 and earlier and (talk is None or talk < KNOWN_MAX_TALK_S):
            fired.append(WrongNumberRule.KNOWN_NUMBER)
        if e164 == pattern_e164:
            fired.append(WrongNumberRule.PATTERN)
        if fired:
            closed[call["linkedid"]] = fired
            if e164:
                marked.append((call["start"], e164))
    return closed


def _listed_caller(name: str) -> dict[str, Any]:
    """A caller to put on the wrong-number list: the first plain answered call's."""
    return next(
        c
        for c in recording(name).calls
        if c["plan_kind"] == "normal" and c["outcome"] == "answered" and c["caller_e164"]
    )


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_recorded_stream_when_calls_end_then_rules_close_exactly_the_predicted(
    ctx: AppContext, name: str
) -> None:
    listed = _listed_caller(name)
    _with(
        ctx,
        wrong_number_rules=[
            WrongNumberRule.SHORT_ANSWER,
            WrongNumberRule.CALLER_HUNG_UP,
            WrongNumberRule.KNOWN_NUMBER,
            WrongNumberRule.PATTERN,
        ],
        wrong_number_patterns=[listed["caller_num_raw"]],
    )
    expected = _expected_closures(name, listed["caller_e164"])

    await replay_bytes((FIXTURES / f"{name}.ami").read_bytes(), _in_order(ctx), pbx="lab")

    async with ctx.sessionmaker() as session:
        records = {c.call_key: c for c in await session.scalars(select(Call))}
        effects = set(await session.scalars(select(JobEffect.key)))
    closed = {
        key: [WrongNumberRule(v["rule"]) for v in c.wrong_number_verdicts or []]
        for key, c in records.items()
        if c.outcome is Outcome.WRONG_NUMBER
    }
    assert closed == expected
    if name == "mixed_60calls":  # this stream exercises every rule its JSON can predict
        fired = {rule for rules in expected.values() for rule in rules}
        assert fired == set(WrongNumberRule) - {WrongNumberRule.NO_CALLER_SPEECH}
    for key in closed:
        call = records[key]
        assert call.auto_closed_at is not None
        assert call.outcome_by is None
        assert call.wrong_number_reason
        assert call.wrong_number_verdicts
        assert call.wrong_number_rule == expected[key][0]
        assert call.wrong_number_reason.startswith(call.wrong_number_verdicts[0]["reason"])
        fact = kpi.fact_of(call)
        if fact is not None:  # a queue call: out of service level and abandon rate
            assert kpi.is_short_call(fact, kpi.KpiParams())
    assert {f"wrong_number:{c.id}" for c in records.values()} <= effects
    assert {f"analysis:{c.id}" for c in records.values() if c.recording} <= effects
    audited = await _audit(ctx, "call.auto_closed")
    assert sorted(int(a.entity_id) for a in audited) == sorted(records[k].id for k in closed)


async def test_given_short_call_when_it_ends_then_in_process_job_closes_it_and_tells_the_agent(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, login="anna", extensions=["101"])
        await session.commit()
    stream = await ctx.streams.subscribe([user_topic(anna.id)], {})

    await ctx.call_event_sink()(call_events("short", "+79161234567", talk_s=2.0))

    async def auto_closed() -> dict[str, Any]:
        async for event in stream:
            data = json.loads(event.data)
            if data["type"] == "call.updated" and data["call"]["auto_closed_at"]:
                return dict(data["call"])
        raise AssertionError("stream ended")

    update = await asyncio.wait_for(auto_closed(), timeout=10)
    await stream.close()
    assert update["outcome"] == "wrong_number"
    assert update["wrong_number_rule"] == "short_answer"
    assert update["wrong_number_reason"].startswith("answered 2 s < 4.5 s and no notes")
    call = await _call(ctx, "short")
    assert call.outcome is Outcome.WRONG_NUMBER


async def test_given_auto_closed_call_when_agent_undoes_then_reopened_audited_and_never_again(
    ctx: AppContext, client: AsyncClient
) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, login="anna", extensions=["101"])
        await make_user(session, login="igor", extensions=["102"])
        await session.commit()
    await _ended_one_by_one(ctx, call_events("c1", "+79161234567", talk_s=1.0))
    call = await _call(ctx, "c1")
    assert call.outcome is Outcome.WRONG_NUMBER

    csrf = await login_as(client, "igor")
    refused = await client.post(
        f"/api/calls/{call.id}/wrong-number/undo", headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 403
    csrf = await login_as(client, "anna")
    undone = await client.post(
        f"/api/calls/{call.id}/wrong-number/undo", headers={"X-CSRF-Token": csrf}
    )
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert body["outcome"] is None
    assert body["wrong_number_undone_at"] is not None
    assert body["wrong_number_rule"] == "short_answer"
    again = await client.post(
        f"/api/calls/{call.id}/wrong-number/undo", headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409

    # The job runs again (its effect key forgotten, as if never run) and the sweep too.
    async with ctx.sessionmaker() as session:
        effect = (await session.scalars(select(JobEffect))).one()
        await session.delete(effect)
        await session.commit()
    _with(ctx, jobs_sweep_after_s=0)
    ctx.jobs.send([wrong_number_job(call.id), sweep_job()])
    await ctx.jobs.drain()

    call = await _call(ctx, "c1")
    assert call.outcome is None
    assert call.wrong_number_undone_at is not None
    assert [a.details["rule"] for a in await _audit(ctx, "call.auto_closed")] == ["short_answer"]
    undo_entries = await _audit(ctx, "call.auto_close_undone")
    assert [(a.entity_id, a.user_id) for a in undo_entries] == [
        (str(call.id), body["agent_user_id"])
    ]


async def test_given_operator_outcome_or_notes_first_then_rules_leave_the_call_alone(
    ctx: AppContext,
) -> None:
    no_jobs = make_sessionmaker(ctx.engine)  # a session that sends no jobs: we run them here
    async with no_jobs() as session:
        await ingest(
            session, ctx.ingest_policy(), call_events("outcome", "+79161234567", talk_s=1.0)
        )
        await ingest(session, ctx.ingest_policy(), call_events("notes", "+79161234568", talk_s=1.0))
        await session.commit()
        rows = {c.call_key: c for c in await session.scalars(select(Call))}
        rows["outcome"].outcome = Outcome.COMPLETED
        rows["notes"].notes = "перезвонит завтра"
        await session.commit()

    ctx.jobs.send([wrong_number_job(rows["outcome"].id), wrong_number_job(rows["notes"].id)])
    await ctx.jobs.drain()

    assert (await _call(ctx, "outcome")).outcome is Outcome.COMPLETED
    notes = await _call(ctx, "notes")
    assert notes.outcome is None
    assert notes.auto_closed_at is None
    assert await _audit(ctx, "call.auto_closed") == []
    assert await _count(ctx, JobEffect) == 2


async def test_given_rolled_back_transaction_then_no_job_is_sent_and_commit_sends_them(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        await ingest(session, ctx.ingest_policy(), call_events("lost", "+79161234567", talk_s=1.0))
        await session.rollback()
    await ctx.jobs.drain()
    assert await _count(ctx, Call) == 0
    assert await _count(ctx, JobEffect) == 0

    async with ctx.sessionmaker() as session:
        await ingest(session, ctx.ingest_policy(), call_events("kept", "+79161234567", talk_s=1.0))
        await session.commit()
    await ctx.jobs.drain()
    assert (await _call(ctx, "kept")).outcome is Outcome.WRONG_NUMBER
    assert await _count(ctx, JobEffect) == 1


async def test_given_sends_lost_when_sweep_runs_then_each_calls_jobs_run_once(
    ctx: AppContext,
) -> None:
    lost = make_sessionmaker(ctx.engine)  # no outbox: the commit's jobs are lost
    ten_s_ago = datetime.now(UTC) - timedelta(seconds=10)
    recorded = call_events("c2", "+79161234568", talk_s=1.0, at=ten_s_ago)
    recorded.insert(
        -1, RecordingStarted(call_key="c2", event_id="c2:mix", at=ten_s_ago, file="c2.wav")
    )
    async with lost() as session:
        plain = call_events("c1", "+79161234567", talk_s=1.0, at=ten_s_ago)
        await ingest(session, ctx.ingest_policy(), plain + recorded)
        await session.commit()
        ids = {c.call_key: c.id for c in await session.scalars(select(Call))}
    await ctx.jobs.drain()
    assert await _count(ctx, JobEffect) == 0

    ctx.jobs.send([sweep_job()])  # the calls ended "just now": left to their own jobs
    await ctx.jobs.drain()
    assert await _count(ctx, JobEffect) == 0

    _with(ctx, jobs_sweep_after_s=0)
    ctx.jobs.send([sweep_job()])
    await ctx.jobs.drain()
    ctx.jobs.send([sweep_job()])
    await ctx.jobs.drain()
    assert (await _call(ctx, "c1")).outcome is Outcome.WRONG_NUMBER
    assert (await _call(ctx, "c2")).outcome is Outcome.WRONG_NUMBER
    async with ctx.sessionmaker() as session:
        effects = sorted(await session.scalars(select(JobEffect.key)))
    # The recorded call went through its analysis (of a missing file: stored as failed).
    assert effects == sorted(
        [f"wrong_number:{ids['c1']}", f"analysis:{ids['c2']}", f"wrong_number:{ids['c2']}"]
    )
    assert len(await _audit(ctx, "call.auto_closed")) == 2


async def test_given_auto_created_client_when_call_is_a_wrong_number_then_no_client_remains(
    ctx: AppContext, client: AsyncClient
) -> None:
    _with(ctx, auto_create_clients=True)
    async with ctx.sessionmaker() as session:
        await make_user(session, login="anna", extensions=["101"])
        await session.commit()
    await _ended_one_by_one(ctx, call_events("c1", "+79161234567", talk_s=1.0))

    call = await _call(ctx, "c1")
    assert call.outcome is Outcome.WRONG_NUMBER
    assert call.client_id is None
    assert await _count(ctx, Client) == 0
    discarded = await _audit(ctx, "client.auto_discarded")
    assert [a.details["call_id"] for a in discarded] == [call.id]

    csrf = await login_as(client, "anna")
    undone = await client.post(
        f"/api/calls/{call.id}/wrong-number/undo", headers={"X-CSRF-Token": csrf}
    )
    assert undone.status_code == 200
    assert undone.json()["client_id"] is not None
    assert await _count(ctx, Client) == 1


async def test_given_auto_created_client_in_use_when_call_is_a_wrong_number_then_it_is_kept(
    ctx: AppContext,
) -> None:
    _with(ctx, auto_create_clients=True)
    no_jobs = make_sessionmaker(ctx.engine)
    async with no_jobs() as session:
        await ingest(session, ctx.ingest_policy(), call_events("c1", "+79161234567", talk_s=1.0))
        await session.commit()
        call = (await session.scalars(select(Call))).one()
        assert call.client_auto_created
        assert call.client_id is not None
        session.add(Task(title="Перезвонить", client_id=call.client_id))
        await session.commit()

    ctx.jobs.send([wrong_number_job(call.id)])
    await ctx.jobs.drain()

    call = await _call(ctx, "c1")
    assert call.outcome is Outcome.WRONG_NUMBER
    assert call.client_id is not None
    assert await _count(ctx, Client) == 1
    (closed,) = await _audit(ctx, "call.auto_closed")
    assert closed.details["client"]["kept"] is True
    assert closed.details["client"]["used_by"] == {"tasks.client_id": 1}


async def test_given_operator_marks_wrong_number_then_the_auto_created_client_goes(
    ctx: AppContext, client: AsyncClient
) -> None:
    _with(ctx, auto_create_clients=True, wrong_number_rules=[])
    async with ctx.sessionmaker() as session:
        await make_user(session, login="anna", extensions=["101"])
        await session.commit()
    await _ended_one_by_one(ctx, call_events("c1", "+79161234567", talk_s=30.0))
    call = await _call(ctx, "c1")
    assert call.client_id is not None

    csrf = await login_as(client, "anna")
    marked = await client.patch(
        f"/api/calls/{call.id}", json={"outcome": "wrong_number"}, headers={"X-CSRF-Token": csrf}
    )
    assert marked.status_code == 200
    assert marked.json()["client_id"] is None
    assert await _count(ctx, Client) == 0
    assert len(await _audit(ctx, "client.auto_discarded")) == 1


async def test_given_recording_analysed_then_the_speech_rule_hears_the_stored_analysis(
    ctx: AppContext,
) -> None:
    # Every real recording has speech; a threshold above any call's length makes the rule
    # fire wherever an analysis was stored, which shows the chain analysis → rules.
    _with(
        ctx,
        recordings_dir=FIXTURES.parent / "recordings",
        wrong_number_rules=[WrongNumberRule.NO_CALLER_SPEECH],
        wrong_number_min_caller_speech_s=3600.0,
    )
    files = {
        r["linkedid"]: r
        for r in json.loads((FIXTURES.parent / "recordings" / "recordings.json").read_text())
        if r["stream"] == "basic_20calls"
    }
    expected = {
        c["linkedid"]
        for c in recording("basic_20calls").calls
        if c["outcome"] == "answered"
        and c["linkedid"] in files
        and files[c["linkedid"]]["seconds"] > 0
    }

    await replay_bytes((FIXTURES / "basic_20calls.ami").read_bytes(), _in_order(ctx), pbx="lab")

    async with ctx.sessionmaker() as session:
        closed = {
            c.call_key: c
            for c in await session.scalars(select(Call))
            if c.outcome is Outcome.WRONG_NUMBER
        }
    assert set(closed) == expected
    for call in closed.values():
        assert call.wrong_number_rule == "no_caller_speech"
        assert call.wrong_number_reason
        assert call.wrong_number_reason.startswith("no caller speech in the recording (")


async def test_given_undo_by_supervisor_and_unknown_call_then_allowed_and_404(
    ctx: AppContext, client: AsyncClient
) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, login="boss", role=Role.SUPERVISOR)
        await session.commit()
    await _ended_one_by_one(ctx, call_events("c1", "+79161234567", talk_s=1.0))
    call = await _call(ctx, "c1")
    csrf = await login_as(client, "boss")
    headers = {"X-CSRF-Token": csrf}
    assert (
        await client.post("/api/calls/999999/wrong-number/undo", headers=headers)
    ).status_code == 404
    done = await client.post(f"/api/calls/{call.id}/wrong-number/undo", headers=headers)
    assert done.status_code == 200
    assert done.json()["outcome"] is None


async def test_given_auto_closed_call_when_agent_picks_another_outcome_then_it_wins_for_good(
    ctx: AppContext, client: AsyncClient
) -> None:
    _with(ctx, auto_create_clients=True)
    async with ctx.sessionmaker() as session:
        await make_user(session, login="anna", extensions=["101"])
        await session.commit()
    await _ended_one_by_one(ctx, call_events("c1", "+79161234567", talk_s=1.0))
    call = await _call(ctx, "c1")
    assert call.outcome is Outcome.WRONG_NUMBER
    assert await _count(ctx, Client) == 0

    csrf = await login_as(client, "anna")
    chosen = await client.patch(
        f"/api/calls/{call.id}", json={"outcome": "sale"}, headers={"X-CSRF-Token": csrf}
    )

    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["outcome"] == "sale"
    assert await _count(ctx, Client) == 1  # the card the rules took back is made again
    async with ctx.sessionmaker() as session:
        await session.execute(delete(JobEffect))
        await session.commit()
    ctx.jobs.send([wrong_number_job(call.id)])
    await ctx.jobs.drain()
    call = await _call(ctx, "c1")
    assert call.outcome is Outcome.SALE
    assert call.wrong_number_undone_at is not None
    assert len(await _audit(ctx, "call.auto_close_undone")) == 1
