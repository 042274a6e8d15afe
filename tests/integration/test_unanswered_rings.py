"""The agents' unanswered rings that ingest keeps equal those derived from the event log.

The agent report counts missed calls from `unanswered_rings` alone, so the rows ingest writes
batch by batch (rings, then answers and ends in later batches, events out of order) must be
the ones `rebuild_unanswered_rings` (the migration's backfill) derives from `pbx_events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.calls import repository
from callcenter.calls.agents import extension_of
from callcenter.calls.models import Call, UnansweredRing
from callcenter.calls.service import ingest
from callcenter.context import AppContext
from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
    Party,
    StopRingReason,
)
from callcenter.reports import service as reports
from tests.factories import make_user
from tests.helpers_ami import recording, shuffle_across_channels, translate_all

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _ingest_in_batches(ctx: AppContext, events: Sequence[CallEvent], size: int) -> None:
    policy = ctx.ingest_policy()
    for start in range(0, len(events), size):
        async with ctx.sessionmaker() as session:
            await ingest(session, policy, events[start : start + size])
            await session.commit()


async def _rings(ctx: AppContext) -> list[tuple[Any, ...]]:
    async with ctx.sessionmaker() as session:
        rows = await session.execute(
            select(
                UnansweredRing.call_id,
                UnansweredRing.agent,
                UnansweredRing.stopped_at,
                UnansweredRing.call_ended_at,
                UnansweredRing.call_answered_by,
            ).order_by(UnansweredRing.call_id, UnansweredRing.agent)
        )
        return [tuple(row) for row in rows]


@BOTH
@pytest.mark.parametrize("shuffle_seed", [None, 7])
async def test_given_a_replayed_stream_when_ingested_in_batches_then_rings_equal_the_rebuild(
    ctx: AppContext, shuffle_seed: int | None
) -> None:
    mixed = recording("mixed_60calls")
    frames = list(mixed.frames)
    if shuffle_seed is not None:
        frames = shuffle_across_channels(frames, shuffle_seed)
    _, events = translate_all(frames)
    async with ctx.sessionmaker() as session:
        # Agents 105 and 106 belong to nobody.
        for n, interface in enumerate(sorted(mixed.agent_names)[:4]):
            await make_user(session, login=f"agent{n}", extensions=[extension_of(interface)])
        await session.commit()

    await _ingest_in_batches(ctx, events, size=5)
    await _ingest_in_batches(ctx, events, size=40)  # a replay changes nothing
    kept = await _rings(ctx)
    async with ctx.sessionmaker() as session:
        await repository.rebuild_unanswered_rings(session)
        await session.commit()
    rebuilt = await _rings(ctx)

    assert kept == rebuilt
    assert len(kept) == sum(len(call["ring_no_answer"]) for call in mixed.calls)
    assert all(ended_at is not None for *_, ended_at, _ in kept)


T0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
ANNA, BORIS, ANNAS_SOFTPHONE = "PJSIP/101", "PJSIP/102", "PJSIP/103"


def _events(key: str, *steps: tuple[int, str, str | None]) -> list[CallEvent]:
    """A queued call, then (second, what, agent) steps: ring, no_answer, answer, end."""
    events: list[CallEvent] = [
        CallStarted(call_key=key, event_id=f"{key}:start", at=T0, direction=Direction.INBOUND,
                    caller_num="89161112233"),
        CallQueued(call_key=key, event_id=f"{key}:queued", at=T0, queue="sales"),
    ]  # fmt: skip
    for second, what, agent in steps:
        at = T0 + timedelta(seconds=second)
        event_id = f"{key}:{what}:{agent}:{second}"
        match what:
            case "ring":
                events.append(AgentRinging(call_key=key, event_id=event_id, at=at,
                                           agent=agent or "", queue="sales"))  # fmt: skip
            case "no_answer":
                events.append(AgentStoppedRinging(call_key=key, event_id=event_id, at=at,
                                                  agent=agent or "",
                                                  reason=StopRingReason.NO_ANSWER))  # fmt: skip
            case "answer":
                events.append(CallAnswered(call_key=key, event_id=event_id, at=at,
                                           agent=agent or "", queue="sales"))  # fmt: skip
            case _:
                events.append(CallEnded(call_key=key, event_id=event_id, at=at,
                                        reason=EndReason.ABANDONED,
                                        ended_by=Party.CALLER))  # fmt: skip
    return events


@BOTH
async def test_given_rings_unanswered_when_the_call_goes_on_in_later_batches_then_misses_count(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, login="anna", name="Anna", extensions=["101", "103"])
        boris = await make_user(session, login="boris", name="Boris", extensions=["102"])
        await session.commit()
    calls = [
        # Boris misses it, then takes it on the second ring: not a miss of his.
        _events("c1", (1, "ring", BORIS), (16, "no_answer", BORIS), (20, "ring", BORIS),
                (22, "answer", BORIS), (90, "end", None)),
        # Boris misses it twice, Anna takes it: one missed call of Boris.
        _events("c2", (1, "ring", BORIS), (16, "no_answer", BORIS), (20, "ring", BORIS),
                (35, "no_answer", BORIS), (36, "ring", ANNA), (38, "answer", ANNA),
                (60, "end", None)),
        # Both miss it (Anna on both her phones) and the caller gives up: one missed call each.
        _events("c3", (1, "ring", ANNA), (1, "ring", ANNAS_SOFTPHONE), (1, "ring", BORIS),
                (16, "no_answer", ANNA), (16, "no_answer", ANNAS_SOFTPHONE),
                (16, "no_answer", BORIS), (30, "end", None)),
        # Anna misses it and the call goes on into the next day: not in this day's report.
        _events("c4", (1, "ring", ANNA), (16, "no_answer", ANNA), (86400, "end", None)),
    ]  # fmt: skip
    for step in range(max(len(events) for events in calls)):
        # The n-th event of every call in one batch: rings before answers and ends.
        batch = [events[step] for events in calls if step < len(events)]
        await _ingest_in_batches(ctx, batch, size=len(batch))

    async with ctx.sessionmaker() as session:
        scope = await reports.scope_of(session, ctx.settings)
        day = date(2026, 11, 10)
        report = await reports.agent_report(session, scope, day, day)

    missed = {row.user_id: row.figures["missed"].value for row in report.rows}
    assert missed == {anna.id: 1, boris.id: 2}
    async with ctx.sessionmaker() as session:
        rows = await session.execute(
            select(Call.call_key, UnansweredRing.agent, UnansweredRing.call_answered_by).join(
                Call, Call.id == UnansweredRing.call_id
            )
        )
        answered_by = {(key, agent): user for key, agent, user in rows}
    assert answered_by == {
        ("c1", BORIS): boris.id,
        ("c2", BORIS): anna.id,
        ("c3", ANNA): None,
        ("c3", ANNAS_SOFTPHONE): None,
        ("c3", BORIS): None,
        ("c4", ANNA): None,
    }


@BOTH
async def test_given_a_call_changed_outside_ingest_then_its_rings_copies_follow(
    ctx: AppContext,
) -> None:
    # The copies are kept by a trigger on `calls`, so a repair or an admin's fix of a call
    # reaches its rings as ingest's own writes do.
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, login="anna", name="Anna", extensions=["101"])
        await session.commit()
    await _ingest_in_batches(
        ctx, _events("c1", (1, "ring", BORIS), (16, "no_answer", BORIS)), size=10
    )
    ended = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)

    async with ctx.sessionmaker() as session:
        call = await session.scalar(select(Call).where(Call.call_key == "c1"))
        assert call is not None
        call.answered_at = ended - timedelta(seconds=30)
        call.agent_user_id = anna.id
        call.ended_at = ended
        await session.commit()
    (ring,) = await _rings(ctx)
    assert ring[3:] == (ended, anna.id)

    async with ctx.sessionmaker() as session:
        call = await session.scalar(select(Call).where(Call.call_key == "c1"))
        assert call is not None
        call.notes = "called back"  # not a fact the rings copy: the copies stay
        await session.commit()
    assert (await _rings(ctx))[0][3:] == (ended, anna.id)

    async with ctx.sessionmaker() as session:
        call = await session.scalar(select(Call).where(Call.call_key == "c1"))
        assert call is not None
        call.answered_at = None
        await session.commit()
    assert (await _rings(ctx))[0][3:] == (ended, None)
