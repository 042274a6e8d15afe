"""Plan targets ("10 deals a day") and their live progress. Never commits.

What each plan metric counts, over the calls that ended (tasks: that were closed) in the
current local day, week (from Monday) or month:

- deals: the manager's calls (a team's: its queue's calls) with the outcome `sale`;
- calls_answered: the calls the manager answered (agent KPI `answered`); a team's: its queue's
  answered calls (queue KPI `answered`);
- closed: tasks assigned to the manager and closed (no team form).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call, Outcome
from callcenter.reports import agent_sql, repository, sql
from callcenter.reports.models import PlanMetric, PlanTarget
from callcenter.reports.periods import PlanPeriod, offset_segments, period_span
from callcenter.reports.repository import TimeRange
from callcenter.reports.schemas import PlanProgress, PlanTargetIn, PlanTargetOut
from callcenter.reports.service import Drill, ReportScope


class PlanInvalid(ValueError):
    pass


class PlanNotFound(LookupError):
    pass


def validate(body: PlanTargetIn) -> None:
    if (body.user_id is None) == (body.queue is None):
        raise PlanInvalid("give either user_id (a manager) or queue (a team)")
    if body.queue is not None and body.metric is PlanMetric.CLOSED:
        raise PlanInvalid("closed tasks are counted per manager only")


async def save_target(session: AsyncSession, body: PlanTargetIn, *, set_by: int) -> PlanTarget:
    """Set the target for a scope, metric and period (one per combination: replaced)."""
    validate(body)
    wanted = PlanTarget(
        user_id=body.user_id,
        queue=body.queue,
        metric=body.metric,
        period=body.period,
        target=body.target,
        set_by=set_by,
    )
    existing = await repository.plan_target_like(session, wanted)
    if existing is not None:
        existing.target = body.target
        existing.set_by = set_by
        await session.flush()
        return existing
    session.add(wanted)
    await session.flush()
    return wanted


async def delete_target(session: AsyncSession, target_id: int) -> PlanTarget:
    row = await session.get(PlanTarget, target_id)
    if row is None:
        raise PlanNotFound(target_id)
    await session.delete(row)
    await session.flush()
    return row


def _window(period: PlanPeriod, today: date, scope: ReportScope) -> tuple[TimeRange, date, date]:
    span = period_span(period, today, scope.tz)
    window = TimeRange(span.since, span.until, offset_segments(span.since, span.until, scope.tz))
    return window, span.first, span.last


def calls_condition(
    target: PlanTarget, scope: ReportScope, window: TimeRange
) -> ColumnElement[bool]:
    """The calls a call-counting plan counts in `window`."""
    ended = repository.ended_in(window)
    match target.metric, target.user_id:
        case PlanMetric.DEALS, None:
            return and_(ended, Call.queue == target.queue, _sale())
        case PlanMetric.DEALS, user_id:
            return and_(ended, agent_sql.handled(user_id), _sale())
        case PlanMetric.CALLS_ANSWERED, None:
            answered = sql.queue_set(sql.QueueSet.ANSWERED, scope.rules)
            return and_(ended, answered, Call.queue == target.queue)
        case PlanMetric.CALLS_ANSWERED, user_id:
            return and_(ended, agent_sql.handled(user_id))
        case _:
            raise PlanInvalid(f"{target.metric} does not count calls")


def _sale() -> ColumnElement[bool]:
    return and_(Call.outcome.is_not(None), Call.outcome == Outcome.SALE)


def drill_set(target: PlanTarget) -> str | None:
    return None if target.metric is PlanMetric.CLOSED else f"plan:{target.id}"


async def progress(
    session: AsyncSession,
    scope: ReportScope,
    targets: Sequence[PlanTarget],
    names: dict[int, str],
    now: datetime,
) -> list[PlanProgress]:
    """Each target with what is done so far in its current period."""
    today = now.astimezone(scope.tz).date()
    items = []
    for target in targets:
        window, first, last = _window(target.period, today, scope)
        if target.metric is PlanMetric.CLOSED and target.user_id is not None:
            done = await repository.count_tasks_closed(
                session, target.user_id, window.since, window.until
            )
        else:
            done = await repository.count_calls(session, calls_condition(target, scope, window))
        call_set = drill_set(target)
        label = names.get(target.user_id, "") if target.user_id is not None else target.queue
        items.append(
            PlanProgress(
                target=PlanTargetOut.model_validate(target),
                label=label or "",
                done=done,
                first=first,
                last=last,
                drill=Drill(first, last).href(call_set) if call_set else None,
            )
        )
    return items


async def drill_condition(
    session: AsyncSession, scope: ReportScope, target_id: int, first: date
) -> tuple[PlanTarget, ColumnElement[bool]]:
    """The calls a plan's counter counted, in the period that begins on `first`."""
    target = await session.get(PlanTarget, target_id)
    if target is None or target.metric is PlanMetric.CLOSED:
        raise PlanNotFound(target_id)
    window, _, _ = _window(target.period, first, scope)
    return target, calls_condition(target, scope, window)
