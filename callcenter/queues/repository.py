"""SQL for the live queues: today's queue calls, outcome changes, pauses, queue settings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call, Outcome
from callcenter.queues.models import AgentPause, QueueSettings

LONGEST_CALL = timedelta(days=1)
"""Calls are looked up by their start (indexed); none lasts longer than this."""


async def ended_queue_calls(
    session: AsyncSession, pbx: str, since: datetime, until: datetime
) -> Sequence[Call]:
    """Calls of `pbx` that entered a queue and ended in [since, until)."""
    query = select(Call).where(
        Call.pbx == pbx,
        Call.started_at >= since - LONGEST_CALL,
        Call.started_at < until,
        Call.queue.is_not(None),
        Call.queued_at.is_not(None),
        Call.ended_at >= since,
        Call.ended_at < until,
    )
    return (await session.scalars(query)).all()


async def queue_call_outcomes(
    session: AsyncSession, pbx: str, *, ended_since: datetime, changed_since: datetime
) -> list[tuple[str, Outcome | None]]:
    """(call key, outcome) of the queue calls ended since `ended_since` whose record changed
    since `changed_since`."""
    query = select(Call.call_key, Call.outcome).where(
        Call.pbx == pbx,
        Call.started_at >= ended_since - LONGEST_CALL,
        Call.queue.is_not(None),
        Call.ended_at >= ended_since,
        Call.updated_at >= changed_since,
    )
    return [(key, outcome) for key, outcome in (await session.execute(query)).all()]


async def open_pauses(session: AsyncSession, pbx: str) -> Sequence[AgentPause]:
    query = select(AgentPause).where(AgentPause.pbx == pbx, AgentPause.ended_at.is_(None))
    return (await session.scalars(query.order_by(AgentPause.started_at))).all()


async def pauses_between(
    session: AsyncSession, since: datetime, until: datetime, pbx: str | None = None
) -> Sequence[AgentPause]:
    """Pauses that overlap [since, until), oldest first."""
    query = select(AgentPause).where(
        AgentPause.started_at < until,
        (AgentPause.ended_at.is_(None)) | (AgentPause.ended_at > since),
    )
    if pbx is not None:
        query = query.where(AgentPause.pbx == pbx)
    return (await session.scalars(query.order_by(AgentPause.started_at, AgentPause.id))).all()


async def all_settings(session: AsyncSession) -> Sequence[QueueSettings]:
    return (await session.scalars(select(QueueSettings))).all()
