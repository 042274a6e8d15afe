"""SQL of the reports and plans. No decisions here: the service says what to count."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    String,
    and_,
    func,
    literal,
    not_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import User
from callcenter.calls.models import Call, PbxEvent
from callcenter.events import StopRingReason
from callcenter.queues.models import QueueSettings
from callcenter.reports import agent_sql, sql
from callcenter.reports.agent_kpis import AgentParams
from callcenter.reports.models import PlanTarget
from callcenter.reports.periods import OffsetSegment
from callcenter.tasks.models import Task

RING_LOOKBACK = timedelta(days=1)
"""How long before a range's start a ring may have stopped for a call that ended in it."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    since: datetime
    until: datetime
    segments: Sequence[OffsetSegment]
    hour_of_day: int | None = None
    """Only calls of this local hour of the day (0-23)."""


def ended_in(window: TimeRange) -> ColumnElement[bool]:
    """Calls that ended in the window (`ix_calls_report_ended` covers the queue KPIs)."""
    return in_range(Call.ended_at, window)


def in_range(column: Any, window: TimeRange) -> ColumnElement[bool]:
    """`column` within the window: a range predicate (index-friendly), then the hour if asked."""
    condition = and_(column >= window.since, column < window.until)
    if window.hour_of_day is not None:
        hour = sql.local_hour_key(column, window.segments) % 24
        condition = and_(condition, hour == window.hour_of_day)
    return condition


_GROUPING_SETTINGS = (
    "work_mem = '256MB'",
    "parallel_setup_cost = 0",
    "parallel_tuple_cost = 0",
    "jit = off",
)


async def _tune_for_grouping(session: AsyncSession, *extra: str) -> None:
    """PostgreSQL: let the grouped pass hash in memory, in parallel workers, without JIT.

    The planner estimates the groups of a computed hour bucket from the distinct end times
    (about one per call), so it would sort a million rows on disk to build a few thousand
    groups, and it sees no gain in partial aggregation by workers. The real groups (queues ×
    hours, agents) are few: the memory is never used, and each worker hands on a few thousand
    rows. JIT compilation costs more than it saves on a pass this size. The settings hold for
    this transaction only (the request's).
    """
    if session.get_bind().dialect.name == "postgresql":
        for setting in (*_GROUPING_SETTINGS, *extra):
            await session.execute(text(f"SET LOCAL {setting}"))


async def queue_groups(
    session: AsyncSession,
    window: TimeRange,
    rules: sql.QueueRules,
    queues: Collection[str] | None,
) -> Sequence[Row[Any]]:
    """Queue-KPI aggregates per (queue, local hour key) of the calls that ended in `window`."""
    hour_key = sql.local_hour_key(sql.REPORT_TIME, window.segments).label("hour_key")
    aggregates = [expr.label(name) for name, expr in sql.queue_aggregates(rules).items()]
    query = (
        select(Call.queue, hour_key, *aggregates)
        .where(ended_in(window), sql.queue_fact())
        .group_by(Call.queue, hour_key)
    )
    if queues is not None:
        query = query.where(Call.queue.in_(sorted(queues)))
    # `ix_calls_report_ended` holds every column this pass reads, in half the pages of the
    # table; for a range as long as the table the planner would still read the table.
    await _tune_for_grouping(session, "enable_seqscan = off")
    return (await session.execute(query)).all()


async def handled_groups(
    session: AsyncSession,
    window: TimeRange,
    params: AgentParams,
    user_ids: Collection[int] | None,
) -> Sequence[Row[Any]]:
    """Agent-KPI aggregates of handled calls per agent user, for calls ended in `window`."""
    aggregates = [expr.label(name) for name, expr in agent_sql.handled_aggregates(params).items()]
    query = (
        select(Call.agent_user_id, *aggregates)
        .where(ended_in(window), agent_sql.handled())
        .group_by(Call.agent_user_id)
    )
    if user_ids is not None:
        query = query.where(Call.agent_user_id.in_(sorted(user_ids)))
    await _tune_for_grouping(session)
    return (await session.execute(query)).all()


def _ring_stopped_unanswered() -> ColumnElement[bool]:
    return and_(
        PbxEvent.kind == agent_sql.RING_STOPPED,
        PbxEvent.payload["reason"].as_string() == StopRingReason.NO_ANSWER.value,
    )


async def unanswered_ring_interfaces(session: AsyncSession, window: TimeRange) -> set[str]:
    """Every agent interface at which a ring stopped unanswered around `window`."""
    agent = PbxEvent.payload["agent"].as_string()
    query = (
        select(agent)
        .where(
            _ring_stopped_unanswered(),
            PbxEvent.at >= window.since - RING_LOOKBACK,
            PbxEvent.at < window.until,
        )
        .distinct()
    )
    return {value for value in (await session.scalars(query)) if value}


async def missed_counts(
    session: AsyncSession, window: TimeRange, user_of_interface: Mapping[str, int]
) -> dict[int, int]:
    """Per agent user: distinct calls ended in `window` that rang them unanswered and that
    they did not answer (the `missed` set of `agent_sql`)."""
    if not user_of_interface:
        return {}
    # Interface → user as a small joined table: one hash lookup per ring, not a long CASE.
    agents = union_all(
        *[
            select(
                literal(interface, String(128)).label("interface"),
                literal(user, Integer).label("user_id"),
            )
            for interface, user in sorted(user_of_interface.items())
        ]
    ).cte("agents")
    answered_by_them = and_(
        Call.agent_user_id.is_not(None),
        Call.agent_user_id == agents.c.user_id,
        Call.answered_at.is_not(None),
    )
    query = (
        select(agents.c.user_id, func.count(func.distinct(Call.id)).label("missed"))
        .select_from(PbxEvent)
        .join(agents, agents.c.interface == PbxEvent.payload["agent"].as_string())
        .join(Call, and_(Call.pbx == PbxEvent.pbx, Call.call_key == PbxEvent.call_key))
        .where(
            _ring_stopped_unanswered(),
            PbxEvent.at >= window.since - RING_LOOKBACK,
            PbxEvent.at < window.until,
            ended_in(window),
            not_(answered_by_them),
        )
        .group_by(agents.c.user_id)
    )
    # The rings are selected by a JSON field, which the planner guesses to match a few dozen
    # rows; a month has a hundred thousand, too many to look calls up one by one.
    await _tune_for_grouping(session, "enable_nestloop = off")
    return {int(uid): int(n) for uid, n in (await session.execute(query)).all()}


async def calls_page(
    session: AsyncSession,
    condition: ColumnElement[bool],
    *,
    offset: int,
    limit: int,
) -> tuple[Sequence[Call], int]:
    """The calls that meet `condition`, newest end first, and how many there are."""
    total = await session.scalar(select(func.count()).select_from(Call).where(condition))
    rows = await session.scalars(
        select(Call)
        .where(condition)
        .order_by(Call.ended_at.desc(), Call.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)


async def calls_stream(
    session: AsyncSession, condition: ColumnElement[bool], batch: int = 2000
) -> Any:
    """The calls that meet `condition` in end order, streamed (exports)."""
    query = select(Call).where(condition).order_by(Call.ended_at, Call.id)
    return await session.stream_scalars(query.execution_options(yield_per=batch))


async def queue_service_levels(session: AsyncSession) -> dict[str, float]:
    """The service-level T supervisors set per queue (queues without one are left out)."""
    rows = await session.execute(
        select(QueueSettings.queue, QueueSettings.service_level_s).where(
            QueueSettings.service_level_s.is_not(None)
        )
    )
    return {queue: float(t) for queue, t in rows if t is not None}


async def user_names(session: AsyncSession, user_ids: Collection[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(sorted(user_ids))))
    return {uid: name for uid, name in rows}


async def active_users(session: AsyncSession) -> Sequence[User]:
    return (
        await session.scalars(select(User).where(User.is_active).order_by(User.name, User.id))
    ).all()


# --- plans -----------------------------------------------------------------------------------


async def plan_targets(
    session: AsyncSession, *, user_id: int | None = None, queues: Collection[str] | None = None
) -> Sequence[PlanTarget]:
    query = select(PlanTarget)
    if user_id is not None or queues is not None:
        scopes = []
        if user_id is not None:
            scopes.append(PlanTarget.user_id == user_id)
        if queues:
            scopes.append(PlanTarget.queue.in_(sorted(queues)))
        query = query.where(*scopes) if len(scopes) == 1 else query.where(scopes[0] | scopes[1])
    query = query.order_by(PlanTarget.user_id, PlanTarget.queue, PlanTarget.metric, PlanTarget.id)
    return (await session.scalars(query)).all()


async def plan_target_like(session: AsyncSession, target: PlanTarget) -> PlanTarget | None:
    """The stored target of the same scope, metric and period, if any."""
    query = select(PlanTarget).where(
        PlanTarget.metric == target.metric,
        PlanTarget.period == target.period,
        PlanTarget.user_id.is_(None)
        if target.user_id is None
        else PlanTarget.user_id == target.user_id,
        PlanTarget.queue.is_(None) if target.queue is None else PlanTarget.queue == target.queue,
    )
    return (await session.scalars(query.limit(1))).first()


async def count_calls(session: AsyncSession, condition: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(Call).where(condition)) or 0)


async def count_tasks_closed(
    session: AsyncSession, user_id: int, since: datetime, until: datetime
) -> int:
    query = (
        select(func.count())
        .select_from(Task)
        .where(Task.assignee_id == user_id, Task.done_at >= since, Task.done_at < until)
    )
    return int(await session.scalar(query) or 0)
