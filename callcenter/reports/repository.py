"""SQL of the reports and plans. No decisions here: the service says what to count."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
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
from callcenter.calls.models import Call, UnansweredRing
from callcenter.queues.models import QueueSettings
from callcenter.reports import agent_sql, sql
from callcenter.reports.agent_kpis import AgentParams
from callcenter.reports.models import PlanTarget
from callcenter.reports.periods import OffsetSegment
from callcenter.tasks.models import Task


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


_GROUPING_SETTINGS = {
    "work_mem": "256MB",
    "parallel_setup_cost": "0",
    "parallel_tuple_cost": "0",
    "jit": "off",
}


@asynccontextmanager
async def tuned_for_grouping(session: AsyncSession) -> AsyncIterator[None]:
    """PostgreSQL: let a pass grouped by a computed hour bucket hash in memory, in parallel
    workers, without JIT; the session's own settings again afterwards.

    The planner estimates the groups of a computed bucket from the distinct values of its
    column (end times: about one per call), so it would plan a million groups, spill them to
    disk and see no gain in partial aggregation by workers. The real groups (queues × hours)
    are a few thousand: the memory is never used, and each worker hands on a few thousand rows.
    JIT compilation costs more than it saves on a pass this size. None of this chooses the
    plan's access paths; other queries of the transaction (e.g. the missed calls', whose plan
    is worse with free parallelism) see the usual settings.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    # `set_config(name, value, true)` is `SET LOCAL`, all of them in one round trip.
    await session.execute(
        select(*[func.set_config(name, value, True) for name, value in _GROUPING_SETTINGS.items()])
    )
    yield
    # Not on an error: the transaction is aborted then, and its SET LOCALs go with it.
    await session.execute(
        select(func.set_config(text("name"), text("reset_val"), True))
        .select_from(text("pg_settings"))
        .where(text("name = ANY(:names)").bindparams(names=list(_GROUPING_SETTINGS)))
    )


def queue_query(
    window: TimeRange, rules: sql.QueueRules, queues: Collection[str] | None
) -> Select[tuple[Any, ...]]:
    """Queue-KPI aggregates per queue and local hour (queue, hour start, hour origin: see
    `sql.hour_bucket`) of the calls that ended in `window`."""
    bucket = sql.hour_bucket(sql.REPORT_TIME, window.segments)
    start, origin = bucket.start.label("hour_start"), bucket.origin.label("hour_origin")
    aggregates = [expr.label(name) for name, expr in sql.queue_aggregates(rules).items()]
    keys = [Call.queue, start, origin] if bucket.origin_varies else [Call.queue, start]
    query = (
        select(Call.queue, start, origin, *aggregates)
        .where(ended_in(window), sql.queue_fact())
        .group_by(*keys)
    )
    if queues is not None:
        query = query.where(Call.queue.in_(sorted(queues)))
    return query


async def queue_groups(
    session: AsyncSession,
    window: TimeRange,
    rules: sql.QueueRules,
    queues: Collection[str] | None,
) -> Sequence[Row[Any]]:
    """The rows of `queue_query`."""
    async with tuned_for_grouping(session):
        rows: Sequence[Row[Any]] = (await session.execute(queue_query(window, rules, queues))).all()
    return rows


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
    # Grouped by a plain column, whose distinct values the planner knows: no tuning needed.
    return (await session.execute(query)).all()


async def unanswered_ring_interfaces(session: AsyncSession, window: TimeRange) -> set[str]:
    """Every agent interface at which a call that ended in `window` stopped ringing unanswered."""
    query = (
        select(UnansweredRing.agent)
        .where(in_range(UnansweredRing.call_ended_at, window))
        .distinct()
    )
    return {value for value in (await session.scalars(query)) if value}


def missed_query(
    window: TimeRange, user_of_interface: Mapping[str, int]
) -> Select[tuple[Any, ...]]:
    """(user_id, missed): distinct calls ended in `window` that rang the user unanswered and
    that they did not answer (the `missed` set of `agent_sql`), from the unanswered rings
    alone. `user_of_interface` must not be empty."""
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
    missed = (
        select(agents.c.user_id, UnansweredRing.call_id)
        .join(agents, agents.c.interface == UnansweredRing.agent)
        .where(
            in_range(UnansweredRing.call_ended_at, window),
            not_(agent_sql.answered_by(UnansweredRing.call_answered_by, agents.c.user_id)),
        )
    )
    # A ring is one row per call and interface: one per call and user too, unless a user has
    # several of the interfaces (and may have missed one call at more than one of them).
    if len(set(user_of_interface.values())) < len(user_of_interface):
        missed = missed.distinct()
    rows = missed.subquery()
    return select(rows.c.user_id, func.count().label("missed")).group_by(rows.c.user_id)


async def missed_counts(
    session: AsyncSession, window: TimeRange, user_of_interface: Mapping[str, int]
) -> dict[int, int]:
    """Missed calls per agent user (`missed_query`)."""
    if not user_of_interface:
        return {}
    rows = (await session.execute(missed_query(window, user_of_interface))).all()
    return {int(uid): int(n) for uid, n in rows}


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
